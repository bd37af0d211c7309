"""Response selection: given a conversation and N candidate replies, one of them the human's, how
often does a scorer put the human reply first?

Protocol (as in the EmpatheticDialogues paper's retrieval results, Rashkin et al., 2019, "P@1,100"):
for each context, the candidates are its own reply plus N-1 replies drawn at random from other
conversations of the same split. Reported: recall@1 out of 10 and out of 100 candidates and the mean
reciprocal rank over 10, with bootstrap intervals. Scorers: the trained ranker, TF-IDF cosine between
context and reply, and the cosine of all-MiniLM-L6-v2 sentence embeddings (mean-pooled, normalised).
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import numpy as np

from .metrics import mean_ci

Scorer = Callable[[list[str], list[str]], list[float]]  # (contexts, replies) -> one score per pair


def selection_sets(examples: Sequence[dict], n_candidates: int, n_contexts: int, seed: int = 0) -> list[dict]:
    """``n_contexts`` items ``{"context", "candidates"}``; the human reply is ``candidates[0]``; the
    others are replies of other conversations (distinct texts)."""
    rng = random.Random(seed)
    n_candidates = min(n_candidates, len({e["reply"] for e in examples}) - 1)  # a small split has fewer
    picked = rng.sample(range(len(examples)), min(n_contexts, len(examples)))
    out = []
    for i in picked:
        ex = examples[i]
        seen, cands = {ex["reply"]}, [ex["reply"]]
        for _ in range(50 * n_candidates):
            if len(cands) >= n_candidates:
                break
            other = examples[rng.randrange(len(examples))]
            if other["conv"] != ex["conv"] and other["reply"] not in seen:
                seen.add(other["reply"])
                cands.append(other["reply"])
        out.append({"context": ex["context"], "candidates": cands})
    return out


def scored_sets(sets: Sequence[dict], scorer: Scorer, n: int | None = None) -> list[np.ndarray]:
    """The scores of the first ``n`` candidates of each set (one scorer call for all of them)."""
    contexts, replies, bounds = [], [], []
    for s in sets:
        cands = s["candidates"][:n] if n else s["candidates"]
        bounds.append((len(replies), len(replies) + len(cands)))
        contexts += [s["context"]] * len(cands)
        replies += cands
    scores = np.asarray(scorer(contexts, replies), dtype=np.float64)
    return [scores[a:b] for a, b in bounds]


def ranks_of(scores: Sequence[np.ndarray]) -> np.ndarray:
    """The rank (1 = first) of each set's first candidate, the human reply, among its scores. Ties count
    against the human reply, so a scorer that says nothing scores nothing."""
    return np.asarray([1 + int((sc[1:] >= sc[0]).sum()) for sc in scores])


def ranks(sets: Sequence[dict], scorer: Scorer, n: int | None = None) -> np.ndarray:
    """The rank (1 = first) of the human reply among the first ``n`` candidates of each set (see ``ranks_of``)."""
    return ranks_of(scored_sets(sets, scorer, n))


def selection_figures(sets: Sequence[dict], scorer: Scorer, samples: int = 1000, seed: int = 0) -> dict:
    """recall@1 of 10 and of 100 (when the sets hold 100 candidates) and MRR of 10, with 95% intervals."""
    figures = {}
    r10 = ranks(sets, scorer, 10)
    for name, values in (("recall@1/10", (r10 == 1).astype(float)), ("mrr/10", 1.0 / r10)):
        figures[name] = mean_ci(values, samples, seed)
    if len(sets[0]["candidates"]) >= 100:
        r100 = ranks(sets, scorer, 100)
        figures["recall@1/100"] = mean_ci((r100 == 1).astype(float), samples, seed)
        figures["recall@10/100"] = mean_ci((r100 <= 10).astype(float), samples, seed)
    figures["contexts"] = len(sets)
    return figures


def tfidf_scorer(fit_texts: Sequence[str]) -> Scorer:
    """Cosine of TF-IDF vectors (word unigrams and bigrams, fitted on ``fit_texts``)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(fit_texts)

    def score(contexts: list[str], replies: list[str]) -> list[float]:
        a, b = vec.transform(contexts), vec.transform(replies)
        return np.asarray(a.multiply(b).sum(axis=1)).ravel().tolist()

    return score


def embedding_scorer(encoder_location: str) -> Scorer:
    """Cosine of mean-pooled, normalised sentence embeddings from an encoder (all-MiniLM-L6-v2), each text
    cut to its first 128 tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from bot.ranker import embed

    tok = AutoTokenizer.from_pretrained(encoder_location)
    model = AutoModel.from_pretrained(encoder_location).eval()
    cache: dict[str, np.ndarray] = {}

    def score(contexts: list[str], replies: list[str]) -> list[float]:
        todo = sorted({t for t in contexts + replies if t not in cache})
        if todo:
            with torch.inference_mode():
                cache.update(zip(todo, embed(model, tok, todo, 126, batch_size=128).numpy()))  # 126 + [CLS], [SEP]
        return [float(cache[c] @ cache[r]) for c, r in zip(contexts, replies)]

    return score
