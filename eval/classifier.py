"""Emotion-classifier metrics on GoEmotions: per label, macro/micro, collapsed to Ekman and
sentiment groups, calibration; threshold tuning; a per-label plot. Works for any classifier that
gives one probability per GoEmotions label."""

from __future__ import annotations

import numpy as np

from bot.emotion import DEFAULT_GROUP_RULE, GROUPINGS, group_probability_matrix

THRESHOLD_GRID = np.round(np.arange(0.02, 0.96, 0.01), 2)


def tune_thresholds(y_true: np.ndarray, probs: np.ndarray, grid: np.ndarray = THRESHOLD_GRID) -> np.ndarray:
    """Per label, the threshold on ``grid`` with the best F1 (ties: the lower threshold)."""
    y = y_true.astype(bool)
    best = np.full(y.shape[1], 0.5)
    for j in range(y.shape[1]):
        pred = probs[:, j][None, :] >= grid[:, None]  # (grid, n)
        tp = (pred & y[:, j]).sum(1)
        fp = (pred & ~y[:, j]).sum(1)
        fn = (~pred & y[:, j]).sum(1)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
        best[j] = grid[int(np.argmax(f1))]
    return best


def collapse(matrix: np.ndarray, label_names: list[str], groups: dict[str, tuple[str, ...]]) -> tuple[np.ndarray, list[str]]:
    """(n, labels) 0/1 -> (n, groups): a group is on when any of its labels is."""
    on, names = group_probability_matrix(matrix.astype(np.float32), label_names, groups, "max")
    return on > 0, names


def tune_group_thresholds(y_true: np.ndarray, probs: np.ndarray, label_names: list[str],
                          rule: str = DEFAULT_GROUP_RULE) -> dict:
    """Per grouping (Ekman, sentiment), one threshold per group on the group probability (made by
    ``rule``), tuned for group F1: ``{"rule": rule, "ekman": {group: threshold}, "sentiment": {...}}``,
    the content of ``group_thresholds.json``."""
    out: dict = {"rule": rule}
    for key, groups in GROUPINGS.items():
        gy, names = collapse(y_true, label_names, groups)
        gp, _ = group_probability_matrix(probs, label_names, groups, rule)
        out[key] = dict(zip(names, map(float, tune_thresholds(gy, gp))))
    return out


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, bins: int = 10) -> float:
    """ECE over every (example, label) decision: sum over equal-width bins of |accuracy - confidence| x share."""
    p = probs.ravel()
    y = y_true.ravel().astype(float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(ece)


def _scores(y_true: np.ndarray, pred: np.ndarray, names: list[str]) -> dict:
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    p, r, f, support = precision_recall_fscore_support(y_true, pred, average=None, zero_division=0)
    return {
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
        "micro_f1": float(f1_score(y_true, pred, average="micro", zero_division=0)),
        "per_label": {n: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
                      for i, n in enumerate(names)},
    }


def classifier_metrics(y_true: np.ndarray, probs: np.ndarray, label_names: list[str],
                       thresholds: np.ndarray | float = 0.5,
                       group_thresholds: dict | None = None) -> dict:
    """Every figure the classifier suite reports, for one set of predictions.

    ``ekman`` / ``sentiment``: the label decisions collapsed to groups (a group is on when any of its
    labels is). With ``group_thresholds`` (from ``tune_group_thresholds``, or ``EmotionClassifier.group_thresholds``),
    also ``ekman_direct`` / ``sentiment_direct``: each group decided on its own probability (made by the
    dict's ``rule``) against its own threshold.
    """
    y = y_true.astype(bool)
    pred = probs >= np.asarray(thresholds)
    out = _scores(y, pred, label_names)
    out["ece"] = expected_calibration_error(y, probs)
    for key, groups in GROUPINGS.items():
        gy, names = collapse(y, label_names, groups)
        gp, _ = collapse(pred, label_names, groups)
        out[key] = _scores(gy, gp, names)
        if group_thresholds and key in group_thresholds:
            gprob, _ = group_probability_matrix(probs, label_names, groups, group_thresholds.get("rule", DEFAULT_GROUP_RULE))
            cut = np.array([group_thresholds[key].get(n, 0.5) for n in names])
            out[f"{key}_direct"] = _scores(gy, gprob >= cut, names)
    out["n_examples"] = int(y.shape[0])
    return out


def plot_per_label(metrics: dict, path, title: str = "GoEmotions test: per-label F1") -> None:
    from matplotlib.figure import Figure

    items = sorted(metrics["per_label"].items(), key=lambda kv: kv[1]["f1"])
    fig = Figure(figsize=(7, 8), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.barh([k for k, _ in items], [v["f1"] for _, v in items], color="#4363d8")
    ax.axvline(metrics["macro_f1"], color="#e6194b", linestyle="--", label=f"macro-F1 {metrics['macro_f1']:.3f}")
    ax.set(xlim=(0, 1), xlabel="F1", title=title)
    ax.legend(loc="lower right")
    fig.savefig(path)
