"""Reply-level text metrics and bootstrap confidence intervals.

* ``distinct_n``: distinct n-grams / all n-grams over the whole set of replies (Distinct-1/2; Li et al.,
  2016, "A Diversity-Promoting Objective Function for Neural Conversation Models").
* ``repetition``: inside one reply, the share of its n-grams that repeat an earlier n-gram of the same
  reply (1 - unique / total; "seq-rep-n" of Welleck et al., 2020), averaged over replies.
* ``bleu``: corpus BLEU from sacrebleu against one reference per reply.
* ``perplexity``: exp of the mean negative log-likelihood per reference token, pooled over examples.
* ``bootstrap``: percentile intervals from resampling examples with replacement.

Words are lower-cased runs of letters and digits (apostrophes kept inside words).
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import numpy as np

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def words(text: str) -> list[str]:
    return _WORD.findall((text or "").lower().replace("\u2019", "'"))


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repetition(text: str, n: int = 3) -> float:
    grams = ngrams(words(text), n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    import sacrebleu

    if not hypotheses:
        return 0.0
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def perplexity(nll_sums: Sequence[float], token_counts: Sequence[int]) -> float:
    tokens = float(np.sum(token_counts))
    return math.exp(float(np.sum(nll_sums)) / tokens) if tokens else float("nan")


def bootstrap(statistic: Callable[[np.ndarray], float], n: int, samples: int = 1000, seed: int = 0,
              level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of ``statistic(indices)`` over ``samples`` resamples of ``n`` examples."""
    if n < 2 or samples < 1:
        return None
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(samples)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    tail = (1 - level) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def mean_ci(values: Sequence[float], samples: int = 1000, seed: int = 0) -> dict:
    """``{"value", "ci95", "n"}`` for the mean of per-example values."""
    arr = np.asarray(values, dtype=np.float64)
    if not len(arr):
        return {"value": None, "ci95": None, "n": 0}
    return {"value": float(arr.mean()), "ci95": bootstrap(lambda idx: arr[idx].mean(), len(arr), samples, seed),
            "n": int(len(arr))}
