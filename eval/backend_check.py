"""Compare reply backends (and, for llama.cpp, the type of the adapter-merged tensors) on quality
against the float reference and on speed, on EmpatheticDialogues validation contexts (never test).

    python -m eval.backend_check --data-dir ../shared/data --examples 200 \\
        --variants transformers llama-cpp:f32 llama-cpp:f16 llama-cpp:q8_0 llama-cpp:same

For every variant, on the same contexts and with the bot's own prompts:

* ``ppl``: perplexity of the human listener's reply; ``delta_nll``: the mean per-token difference
  of its log-likelihood from the first variant (the reference), with a bootstrap interval;
* ``greedy_same``: the share of contexts where greedy decoding (no repetition penalty: the backends
  apply it to different windows) writes the same reply as the reference;
* ``tok_s``: tokens a second of greedy decoding (prompt included in the time), and ``turn_ms``: the
  median whole turn with the configured number of candidates (emotion reading, crisis check, ranking).

A table is printed and written as JSON and Markdown to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .metrics import mean_ci


def _bot(variant: str, seed: int):
    from bot import BotConfig, EmpatheticBot

    backend, _, gguf_type = variant.partition(":")
    config = BotConfig()
    config.model.backend = backend
    if gguf_type:
        config.model.gguf_type = gguf_type
    config.generation.seed = seed
    return EmpatheticBot(config)


def measure(variant: str, examples: list[dict], speed_examples: int, seed: int = 0) -> dict:
    from bot.core import Reply
    from bot.generation import StreamStats

    from .bot_suite import reference_nll

    bot = _bot(variant, seed)
    nll = reference_nll(bot, examples, progress=False)
    greedy = bot.config.generation.__class__(**{**vars(bot.config.generation), "temperature": 0.0,
                                                          "repetition_penalty": 1.0})  # the backends' penalties differ
    texts, tokens, seconds, turns = [], 0, 0.0, []
    for ex in examples[:speed_examples]:
        messages, _, _ = bot.prompt(ex["context"])
        stats = StreamStats()
        t = time.perf_counter()
        texts.append(bot.reply_model.candidates(messages, greedy, 1, stats)[0][0])
        seconds += time.perf_counter() - t
        tokens += stats.new_tokens
        t = time.perf_counter()
        [x for x in bot.respond(ex["context"]) if isinstance(x, Reply)]
        turns.append((time.perf_counter() - t) * 1e3)
    return {"variant": variant, "info": bot.info()["reply_model"], "nll": nll, "greedy": texts,
            "tok_s": tokens / seconds if seconds else 0.0, "turn_ms_median": float(np.median(turns)) if turns else None}


def compare(results: list[dict]) -> dict:
    ref = results[0]
    table = {}
    for res in results:
        pairs = [(a["nll"] / a["tokens"], b["nll"] / b["tokens"]) for a, b in zip(res["nll"], ref["nll"])
                 if "nll" in a and "nll" in b]
        total_nll = sum(r["nll"] for r in res["nll"] if "nll" in r)
        total_tok = sum(r["tokens"] for r in res["nll"] if "nll" in r)
        same = [float(a == b) for a, b in zip(res["greedy"], ref["greedy"])]
        table[res["variant"]] = {
            "ppl": float(np.exp(total_nll / total_tok)) if total_tok else None,
            "delta_nll": mean_ci([a - b for a, b in pairs]),
            "greedy_same": float(np.mean(same)) if same else None,
            "tok_s": round(res["tok_s"], 1),
            "turn_ms_median": res["turn_ms_median"],
            "loaded_from": res["info"].get("loaded_from"),
        }
    return table


def markdown(table: dict, n: int, speed_n: int) -> str:
    lines = [f"Reference perplexity on {n} EmpatheticDialogues validation listener turns (the bot's prompts); "
             f"speed on {speed_n} of them; the first row is the reference.", "",
             "| variant | perplexity | per-token NLL vs reference | same greedy reply | greedy tokens/s | median turn ms |",
             "| --- | --- | --- | --- | --- | --- |"]
    for variant, t in table.items():
        d = t["delta_nll"]
        lines.append(f"| {variant} | {t['ppl']:.3f} | {d['value']:+.4f} [{d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f}] | "
                     f"{t['greedy_same']:.2f} | {t['tok_s']:.1f} | {t['turn_ms_median']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from .bot_suite import ed_test_examples

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="folder holding empatheticdialogues/ (or EMPATHETIC_BOT_DATA)")
    p.add_argument("--examples", type=int, default=200)
    p.add_argument("--speed-examples", type=int, default=30)
    p.add_argument("--variants", nargs="+", default=["transformers", "llama-cpp:f32", "llama-cpp:q8_0"],
                   help="backend[:gguf_type]; the first is the reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="runs/backends")
    args = p.parse_args(argv)
    examples = ed_test_examples(args.data_dir, args.examples, args.seed, split="valid")
    results = []
    for variant in args.variants:
        t0 = time.time()
        results.append(measure(variant, examples, args.speed_examples, args.seed))
        print(f"{variant}: {time.time() - t0:.0f} s", flush=True)
    table = compare(results)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "backends.json").write_text(json.dumps({"examples": len(examples), "table": table}, indent=1))
    md = markdown(table, len(examples), min(args.speed_examples, len(examples)))
    (out / "backends.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
