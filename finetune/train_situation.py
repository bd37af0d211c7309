"""Read whether a person is telling of something bad from what happened, not from the words of feeling.

The emotion classifier (GoEmotions) reads the feeling a message *voices*: "my mum read my diary and
brought it up at dinner" voices none (neutral 0.83), and "Today would have been my wife's 70th
birthday." reads as joy and excitement. A listener hears a bad situation in both. The reply checks
and the sympathy bonus rely on knowing it (``bot.core``: a cheerful reply to distress is passed over).

This script fits a logistic regression on the response ranker's own embedding of the conversation (the
vector the bot already computes every turn to search the reply pool, so reading the situation costs
one dot product) to the valence of the EmpatheticDialogues emotion label of the conversation
(afraid, sad, guilty... against proud, grateful, joyful...; surprised, sentimental and nostalgic left
out), with ESConv contexts (people seeking support) as more negatives. The contexts are cut before a
listener turn, as the bot reads them. Its threshold is chosen on ED valid, never test:
the lowest probability at which at most ``--glad-cap`` of the glad conversations read as bad.

    python -m finetune.train_situation --data-dir ../shared/data [--ranker empathy-ranker] [--output DIR]

writes ``situation.json`` (weights, bias, threshold, figures, command) into the ranker folder (the
shipped one by default); ``bot.ranker.ResponseRanker.situation`` reads it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np


def contexts(conversations, per_conversation: int, rng: random.Random) -> list[tuple[list[dict], int]]:
    """Up to ``per_conversation`` cuts of each conversation before one of its first two listener turns,
    each with the conversation's valence (conversations of no valence left out)."""
    from finetune.train_cross_ranker import valence

    out = []
    for conv in conversations:
        v = valence(conv.source, conv.emotion)
        if v == 0:
            continue
        cuts = [i for i, m in enumerate(conv.messages) if m["role"] == "assistant" and i > 0][:2]
        for i in rng.sample(cuts, min(per_conversation, len(cuts))):
            if conv.messages[i - 1]["role"] == "user":
                out.append((conv.messages[:i], int(v < 0)))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--ranker", default="empathy-ranker", help="the ranker whose embedding is read (and where "
                   "situation.json goes unless --output)")
    p.add_argument("--output", default=None, help="folder for situation.json (default: the ranker's)")
    p.add_argument("--esconv", type=int, default=2000, help="ESConv contexts added as negatives")
    p.add_argument("--glad-cap", type=float, default=0.05,
                   help="at most this share of glad ED valid conversations may read as bad")
    p.add_argument("--c", type=float, default=1.0, help="inverse L2 strength of the logistic regression")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)

    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from bot.ranker import MAX_CONTEXT_TOKENS, ResponseRanker, context_text, embed
    from finetune.dialogue_data import data_root, read_empathetic_dialogues, read_esconv
    from finetune.train_classifier import git_commit

    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_root(args.data_dir)
    if root is None:
        raise SystemExit("give --data-dir (or $EMPATHETIC_BOT_DATA) with empatheticdialogues/ and esconv/")
    t0 = time.time()
    rng = random.Random(args.seed)
    ed = list(read_empathetic_dialogues(root / "empatheticdialogues"))
    es = [c for c in read_esconv(root / "esconv") if c.split == "train"]
    train = contexts([c for c in ed if c.split == "train"], 1, rng)
    rng.shuffle(es)
    train += contexts(es, 1, rng)[:args.esconv]
    valid = contexts([c for c in ed if c.split == "valid"], 1, rng)
    ranker = ResponseRanker(args.ranker, cross=False)

    def vectors(rows):
        with torch.inference_mode():
            return embed(ranker.model, ranker.tokenizer, [context_text(msgs) for msgs, _ in rows],
                         -MAX_CONTEXT_TOKENS).float().numpy()

    x_train, y_train = vectors(train), np.array([y for _, y in train])
    x_valid, y_valid = vectors(valid), np.array([y for _, y in valid])
    model = LogisticRegression(C=args.c, max_iter=2000).fit(x_train, y_train)
    p_valid = model.predict_proba(x_valid)[:, 1]
    glad = p_valid[y_valid == 0]
    grid = np.round(np.arange(0.5, 0.99, 0.01), 2)
    threshold = float(next((t for t in grid if (glad >= t).mean() <= args.glad_cap), grid[-1]))
    figures = {"train_contexts": len(train), "valid_contexts": len(valid), "valid_auc": float(roc_auc_score(y_valid, p_valid)),
               "valid_accuracy_at_0.5": float(((p_valid >= 0.5) == y_valid).mean()),
               "at_threshold": {"bad_read_as_bad": float((p_valid[y_valid == 1] >= threshold).mean()),
                                "glad_read_as_bad": float((glad >= threshold).mean())}}
    out = Path(args.output or ranker.resolved.location)
    out.mkdir(parents=True, exist_ok=True)
    (out / "situation.json").write_text(json.dumps({
        "what": "logistic regression on the ranker's context embedding: P(the person tells of something bad)",
        "weights": [round(float(w), 6) for w in model.coef_[0]], "bias": round(float(model.intercept_[0]), 6),
        "threshold": threshold, "figures": figures, "command": "python -m finetune.train_situation " + " ".join(
            sys.argv[1:] if argv is None else argv), "commit": git_commit(), "minutes": round((time.time() - t0) / 60, 1)},
        indent=1))
    print(json.dumps({"threshold": threshold, **figures}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
