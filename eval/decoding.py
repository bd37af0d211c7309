"""Choose decoding settings by measurement on validation contexts (never test).

    python -m eval.decoding runs/sbs/contexts.jsonl --judge runs/ranker-esconv --output runs/decoding \\
        --grid "candidates=1" "candidates=4" "candidates=4,temperature=0.8" "candidates=4,max_new_tokens=60"

Each grid point is a set of ``GenerationConfig`` overrides (``candidates``, ``temperature``, ``top_p``,
``repetition_penalty``, ``max_new_tokens``) on the default bot. The bot answers every context with
it (same seed), and each reply is scored:

* ``judge_fit``: the fit score of a judge ranker that chose nothing (trained on other data, e.g. ESConv
  only, while the bot's ranker saw ED and ESConv), centred per context over all grid points, so it
  compares settings on the same conversations;
* ``problems``: the share of shown replies with any problem the reply checks know
  (``bot.replycheck``; written replies count as none), and ``replaced``: the share where every candidate
  failed a never-shown check and the fallback was shown;
* ``human reply shown``: the share of turns answered by a reply from the reply pool (``--retrieved``);
* ``words``: reply length; ``turn_ms``: the whole turn on this machine.

A table (``decoding.md``) and every reply (``replies.jsonl``) are written to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .metrics import mean_ci

KNOWN = {"candidates": int, "retrieved": int, "temperature": float, "top_p": float, "repetition_penalty": float, "max_new_tokens": int}


def parse_point(text: str) -> dict:
    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in KNOWN:
            raise ValueError(f"unknown setting {key!r}; known: {', '.join(KNOWN)}")
        out[key] = KNOWN[key](value)
    return out


def run(contexts_file: str, grid: list[str], judge: str, output: str, base_config=None) -> dict:
    from bot import BotConfig, EmpatheticBot
    from bot.core import Reply
    from bot.ranker import ResponseRanker, context_text

    contexts = [json.loads(line) for line in open(contexts_file, encoding="utf-8") if line.strip()]
    config = (base_config or BotConfig()).copy()
    config.generation.seed = 0
    bot = EmpatheticBot(config)
    judge_model = ResponseRanker(judge)
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for point in grid:
        settings = parse_point(point)
        for key, value in settings.items():
            setattr(bot.config.generation, key, value)
        bot.config.validate()
        t0 = time.time()
        for ctx in contexts:
            t = time.perf_counter()
            reply = [x for x in bot.respond(ctx["context"]) if isinstance(x, Reply)][0]
            shown = reply.candidates[reply.chosen] if reply.chosen is not None else None
            rows.append({"point": point, "id": ctx["id"], "response": reply.text, "turn_ms": (time.perf_counter() - t) * 1e3,
                         "problems": list(shown["problems"]) if shown else [],
                         "replaced": "output_replaced" in reply.safety, "source": shown["source"] if shown else "written",
                         "context": ctx["context"]})
        print(f"{point}: {len(contexts)} contexts in {time.time() - t0:.0f} s", flush=True)
        bot.config.generation = config.generation.__class__(**vars(config.generation))  # back to the start
    # the judge: fit of each shown reply, centred per context across grid points
    fits = judge_model.score_pairs([context_text(r["context"]) for r in rows], [r["response"] for r in rows])
    by_id: dict[str, list[float]] = {}
    for r, f in zip(rows, fits):
        r["judge_raw"] = f
        by_id.setdefault(r["id"], []).append(f)
    for r in rows:
        r["judge_fit"] = r["judge_raw"] - float(np.mean(by_id[r["id"]]))
    table = {}
    for point in grid:
        rs = [r for r in rows if r["point"] == point]
        table[point] = {
            "judge_fit": mean_ci([r["judge_fit"] for r in rs]),
            "problems": mean_ci([float(bool(r["problems"])) for r in rs]),
            "replaced": float(np.mean([r["replaced"] for r in rs])),
            "retrieved": float(np.mean([r["source"] == "retrieved" for r in rs])),
            "words": float(np.mean([len(r["response"].split()) for r in rs])),
            "turn_ms_median": float(np.median([r["turn_ms"] for r in rs])),
        }
    with open(out / "replies.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({k: v for k, v in r.items() if k != "context"}, ensure_ascii=False) + "\n")
    (out / "decoding.json").write_text(json.dumps({"contexts": contexts_file, "judge": judge, "table": table}, indent=1))
    (out / "decoding.md").write_text(markdown(table, len(contexts), judge))
    return table


def markdown(table: dict, n: int, judge: str) -> str:
    lines = [f"Decoding settings on {n} validation contexts; judge: `{judge}` (chose nothing).", "",
             "| settings | judge fit (centred) | any problem | fallback shown | human reply shown | words | median turn ms |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for point, t in table.items():
        jf, pr = t["judge_fit"], t["problems"]
        lines.append(f"| {point} | {jf['value']:+.2f} [{jf['ci95'][0]:+.2f}, {jf['ci95'][1]:+.2f}] | "
                     f"{pr['value']:.2f} [{pr['ci95'][0]:.2f}, {pr['ci95'][1]:.2f}] | {t['replaced']:.2f} | "
                     f"{t.get('retrieved', 0.0):.2f} | "
                     f"{t['words']:.1f} | {t['turn_ms_median']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("contexts")
    p.add_argument("--grid", nargs="+", required=True)
    p.add_argument("--judge", required=True, help="a ranker folder that did not choose the replies")
    p.add_argument("--output", default="runs/decoding")
    p.add_argument("--ranker", default=None, help="the bot's ranker (default: the shipped one)")
    args = p.parse_args(argv)
    base = None
    if args.ranker is not None:
        from bot import BotConfig

        base = BotConfig()
        base.model.ranker = args.ranker
    run(args.contexts, args.grid, args.judge, args.output, base)
    print((Path(args.output) / "decoding.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
