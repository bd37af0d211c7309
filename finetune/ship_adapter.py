"""Package a trained reply adapter: float16 weights, its run summary, and a model card.

    python -m finetune.ship_adapter runs/adapter --output bot/models/empathy-lora \\
        --data-counts runs/sft-data/counts.json --compare reports/compare/compare.json

The adapter folder written by ``finetune.train_adapter`` holds ``adapter_config.json``,
``adapter_model.safetensors`` (float32) and ``run_summary.json``. The packaged copy keeps the config
and the summary, rounds the weights to float16 (half the size; the bot computes in the base model's
dtype) and gets a ``README.md`` written from the summary, the data counts and the evaluation.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def _fmt(fig) -> str:
    if fig is None:
        return "n/a"
    return f"{fig:.3f}" if isinstance(fig, float) else str(fig)


def card(summary: dict, counts: dict | None, comparison: dict | None, size_mb: float,
         data_command: str | None = None, note: str | None = None) -> str:
    cfg = summary["config"]
    skip = {"data", "output", "resume", "cache_dir", "base_model"}
    if cfg.get("method") != "adalora":
        skip |= {k for k in cfg if k.startswith("adalora_")}
    args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in cfg.items() if v is not None and k not in skip)
    vl = summary.get("valid_losses") or []
    curve = ", ".join(f"{v['loss']:.3f} (step {v['step']})" for v in vl)
    lines = [
        "# empathy-lora: a LoRA reply adapter for SmolLM2-135M-Instruct", "",
        "Teaches the bot's base model to answer the way listeners in EmpatheticDialogues and supporters in ESConv do: "
        "short replies that acknowledge the feeling and ask about it. Each training example is rendered with the "
        "bot's own prompt templates and the emotion state that the bot's classifier and tracker compute over the "
        "user's turns, so the adapter sees at training time what it sees while serving.", "",
        "## License: non-commercial", "",
        "EmpatheticDialogues (Rashkin et al., 2019) and ESConv (Liu et al., 2021) are CC BY-NC 4.0, so this adapter "
        "is for non-commercial use only. For commercial use, train your own on your own conversations "
        "(`python -m finetune.dialogue_data --jsonl yours.jsonl --output runs/own` then "
        "`python -m finetune.train_adapter --data runs/own`) and pass its folder to `--adapter`, or run without "
        "an adapter (`--adapter ''`).", "",
        "## Training", "",
        *([note, ""] if note else []),
        f"- Base model: {summary['base_model']}; method {summary['method']}, "
        f"{summary['trainable_parameters']:,} trainable parameters; weights stored as float16 ({size_mb:.1f} MB).",
        f"- Examples: {summary['examples']['train']:,} train, {summary['examples']['valid']:,} validation "
        f"({summary['examples']['skipped_too_long']} longer than {cfg['max_length']} tokens skipped).",
    ]
    if counts:
        lines.append("- Data preparation counts (conversations / examples per source and split): "
                     + "; ".join(f"{k} {counts['conversations'].get(k, 0):,} / {v:,}" for k, v in sorted(counts["examples"].items()))
                     + f"; {counts.get('duplicates', 0)} duplicates dropped.")
    if data_command:
        lines.append(f"- Data preparation: `{data_command}`")
    lines += [
        f"- Training: `python -m finetune.train_adapter --data {cfg['data']} {args}`",
        f"- Data files: " + ", ".join(f"{k} sha256 {v['sha256'][:16]}..." for k, v in summary["data"].items()),
        f"- Device: {summary['device']}; {summary['steps']} steps in {summary['train_seconds'] / 60:.1f} min, "
        f"{summary['tokens_per_s']:.0f} tokens/s; peak memory {summary['peak_memory_mb']:.0f} MB ({summary['peak_memory_kind']}).",
        f"- Validation loss: {curve}.", f"- Commit: {summary['commit']}.",
    ]
    if comparison:
        labels = comparison["labels"]
        lines += ["", "## Evaluation (`empathetic-bot eval`, EmpatheticDialogues test)", "",
                  "| figure | " + " | ".join(labels) + " | better |", "| --- " * (len(labels) + 2) + "|"]
        for name, fig in comparison["figures"].items():
            lines.append(f"| {name} | " + " | ".join(_fmt(v) for v in fig["values"]) + f" | {fig['better']} |")
    lines += ["", "## Limits", "",
              "- English only, trained on crowd-sourced and volunteer conversations, not on clinical practice. "
              "It is not a therapist and must not be used as one.",
              "- A 135M-parameter model: replies can be generic, repetitive or wrong about the facts of the "
              "person's situation. The bot's crisis handling (resources appended to flagged messages) does not "
              "depend on the adapter."]
    return "\n".join(lines) + "\n"


def ship(source: Path, output: Path, counts: Path | None = None, compare: Path | None = None,
         data_command: str | None = None, note: str | None = None) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    summary = json.loads((source / "run_summary.json").read_text())
    output.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "adapter_config.json", output / "adapter_config.json")
    weights = {k: v.to(torch.float16) for k, v in load_file(str(source / "adapter_model.safetensors")).items()}
    save_file(weights, str(output / "adapter_model.safetensors"), metadata={"format": "pt"})
    (output / "run_summary.json").write_text(json.dumps(summary, indent=1))
    counts_d = json.loads(counts.read_text()) if counts else None
    if counts_d:
        (output / "data_counts.json").write_text(json.dumps(counts_d, indent=1))
    comparison = json.loads(compare.read_text()) if compare else None
    size = (output / "adapter_model.safetensors").stat().st_size / 2**20
    (output / "README.md").write_text(card(summary, counts_d, comparison, size, data_command, note))
    return output


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", help="adapter folder written by finetune.train_adapter")
    p.add_argument("--output", required=True)
    p.add_argument("--data-counts", default=None, help="counts.json from finetune.dialogue_data")
    p.add_argument("--compare", default=None, help="compare.json from empathetic-bot eval --compare")
    p.add_argument("--data-command", default=None, help="the command that prepared the data, for the card")
    p.add_argument("--note", default=None, help="a paragraph for the card's training section")
    a = p.parse_args(argv)
    out = ship(Path(a.source), Path(a.output), Path(a.data_counts) if a.data_counts else None,
               Path(a.compare) if a.compare else None, a.data_command, a.note)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
