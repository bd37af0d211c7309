"""How human listeners answer each emotion: the emotion profile of replies, for the ranker's emotion fit.

    python -m finetune.emotion_fit --data-dir ../shared/data --ranker runs/ranker --output runs/ranker/emotion_fit.json

The project's emotion classifier reads the speaker's message and the listener's reply of every
EmpatheticDialogues train exchange (a sample of ``--pairs``). For each of the 28 labels, the profile is
the mean emotion distribution of the replies, weighted by how much the speaker's message carried that
label: ``P = (U^T R) / colsum(U)`` (``U``: speakers' probabilities, ``R``: replies'). Grief tends to be
answered with sadness and caring, pride with admiration and joy...

At serving time the expected profile for a message is ``u P / sum(u)`` (``u``: the message's
probabilities), and a candidate reply's *emotion fit* is the cosine of its own emotion probabilities with
that profile. The bot ranks candidates by ``ranker fit + weight x emotion fit``; the weight is chosen on
EmpatheticDialogues valid, by recall@1 out of 10 in response selection (the human reply against nine
from other conversations), from ``--weights``. Only derived statistics are saved (a 28 x 28 table), not
the dialogue text.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np


def probabilities(clf, texts: list[str], batch_size: int = 64) -> np.ndarray:
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(clf.labels)), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        rows = clf.predict([texts[i] for i in idx])
        out[idx] = [[r[label] for label in clf.labels] for r in rows]
    return out


def expected_profiles(user: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """Expected reply emotion distribution for each row of speaker probabilities."""
    weights = user / np.clip(user.sum(axis=1, keepdims=True), 1e-9, None)
    return weights @ profile


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.clip(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-9, None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--ranker", required=True, help="the ranker folder the weight is chosen for")
    p.add_argument("--classifier", default="goemotions-minilm")
    p.add_argument("--pairs", type=int, default=12000)
    p.add_argument("--dev-contexts", type=int, default=1000)
    p.add_argument("--weights", type=float, nargs="+", default=[0, 1, 2, 4, 6, 8, 12])
    p.add_argument("--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from bot.emotion import EmotionClassifier
    from bot.ranker import ResponseRanker
    from eval.ranking import ranks, selection_sets
    from finetune.train_ranker import reply_examples

    clf = EmotionClassifier(args.classifier)
    train = [e for e in reply_examples(args.data_dir, "empatheticdialogues", ("train",))]
    random.Random(args.seed).shuffle(train)
    train = train[:args.pairs]
    U = probabilities(clf, [e["last_user"] for e in train])
    R = probabilities(clf, [e["reply"] for e in train])
    profile = (U.T @ R) / np.clip(U.sum(axis=0)[:, None], 1e-9, None)
    print(f"profiles from {len(train)} exchanges")

    # choose the weight on ED valid: response selection, ranker fit + w * emotion fit
    dev = reply_examples(args.data_dir, "empatheticdialogues", ("valid",))
    sets = selection_sets(dev, 10, args.dev_contexts, seed=args.seed)
    last_user = {e["context"]: e["last_user"] for e in dev}
    ranker = ResponseRanker(args.ranker)
    contexts = [s["context"] for s in sets for _ in s["candidates"]]
    replies = [c for s in sets for c in s["candidates"]]
    fit = np.asarray(ranker.score_pairs(contexts, replies))
    u = probabilities(clf, [last_user[c] for c in contexts])
    r = probabilities(clf, replies)
    efit = cosine_rows(r, expected_profiles(u, profile))
    table = {}
    for w in args.weights:
        combined = fit + w * efit
        lookup = dict(zip(zip(contexts, replies), combined))
        rk = ranks(sets, lambda c, rr: [lookup[(x, y)] for x, y in zip(c, rr)], 10)
        table[w] = float((rk == 1).mean())
        print(f"weight {w}: dev recall@1/10 {table[w]:.3f}")
    best = max(table, key=lambda w: (table[w], -w))
    Path(args.output).write_text(json.dumps({
        "labels": list(clf.labels), "profile": np.round(profile, 5).tolist(), "weight": best,
        "dev_recall@1/10_by_weight": {str(k): v for k, v in table.items()}, "pairs": len(train),
        "classifier": args.classifier, "source": "EmpatheticDialogues train (derived statistics only)"}, indent=1))
    print(f"weight {best} (dev recall@1/10 {table[best]:.3f}; without emotion fit {table.get(0.0, table.get(0)):.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
