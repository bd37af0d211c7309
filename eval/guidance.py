"""Guidance at decoding, scored on human replies: how likely the reference listener's reply is when each
token is drawn from ``u + gamma * (c - u)`` (``bot.guidance``) instead of the conditioned prompt alone.

    python -m eval.guidance --data-dir ../shared/data --split valid --n 300 --gammas 1,1.25,1.5,2 \\
        [--adapter ...] [bot options]

Reference perplexity per gamma on EmpatheticDialogues listener turns (seeded draw, as in ``eval
quality``), with bootstrap intervals, and its ratio to gamma 1 (paired). ``--conditioning`` also scores
the same turns with the bot's own state, another conversation's and none (``eval quality``'s
conditioning gain, here on any split: ``valid`` for choosing a form of the state). A gamma that makes the human
replies less likely pulls the model away from what listeners say; one that makes them more likely
strengthens what the state adds. Runs on the transformers backend (it needs the model's logits).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def summarise(rows: list[dict], gammas, samples: int = 1000, seed: int = 0) -> dict:
    from eval.metrics import bootstrap, perplexity

    tok = np.array([r["tokens"] for r in rows])
    nll = {g: np.array([r[f"nll_g{g:g}"] for r in rows]) for g in gammas}
    out: dict = {"n": len(rows), "tokens": int(tok.sum()), "gammas": {}}
    for g in gammas:
        out["gammas"][f"{g:g}"] = {
            "perplexity": perplexity(nll[g], tok),
            "ci95": bootstrap(lambda i, g=g: perplexity(nll[g][i], tok[i]), len(rows), samples, seed),
            "ratio_to_1": perplexity(nll[g], tok) / perplexity(nll[gammas[0]], tok),
            "ratio_ci95": bootstrap(lambda i, g=g: perplexity(nll[g][i], tok[i]) / perplexity(nll[gammas[0]][i], tok[i]),
                                    len(rows), samples, seed),
        }
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--split", default="valid", choices=("valid", "test"))
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gammas", default="1,1.25,1.5,2", help="comma-separated; the first is the reference (1)")
    p.add_argument("--conditioning", action="store_true", help="also the own / swapped / no-state perplexities")
    p.add_argument("--output", default=None, help="write the rows and summary here (JSON)")
    args, rest = p.parse_known_args(argv)
    from bot.cli import _add_model_options, config_from_args
    from bot.core import EmpatheticBot
    from eval.bot_suite import conditioning_suite, ed_test_examples, guided_nll, reference_nll

    gammas = tuple(float(g) for g in args.gammas.split(","))
    bp = argparse.ArgumentParser()
    _add_model_options(bp)
    config = config_from_args(bp.parse_args(rest))
    config.model.backend = "transformers"
    bot = EmpatheticBot(config)
    examples = ed_test_examples(args.data_dir, args.n, args.seed, args.split)
    rows = guided_nll(bot, examples, gammas)
    result = summarise(rows, gammas)
    result["adapter"] = config.model.adapter
    if args.conditioning:
        result["conditioning"] = conditioning_suite(reference_nll(bot, examples, seed=args.seed), 1000, args.seed)
    print(json.dumps(result, indent=1))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps({**result, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
