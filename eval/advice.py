"""Agreement of the acknowledge-before-advising rules (``bot.advice``) with ESConv's strategy labels.

The rules themselves live in ``bot.advice`` (the bot uses them to pass over candidate replies that
advise before acknowledging); they are re-exported here for the evaluation suite.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot.advice import AdviceReading, is_acknowledgement, is_advice, read_reply, sentences  # noqa: F401

def validate_on_esconv(esconv_dir: str | Path, split: str = "valid") -> dict:
    """Precision / recall of ``is_advice`` (on a whole turn) against ESConv's "Providing Suggestions" label."""
    tp = fp = fn = tn = 0
    with open(Path(esconv_dir) / f"{split}.txt", encoding="utf-8") as f:
        for line in f:
            try:
                dialog = json.loads(line)["dialog"]
            except (json.JSONDecodeError, KeyError):
                continue
            for turn in dialog:
                if turn.get("speaker") != "sys" or not turn.get("strategy"):
                    continue
                gold = turn["strategy"] == "Providing Suggestions"
                pred = any(is_advice(s) for s in sentences(turn.get("text", "")))
                tp, fp, fn, tn = tp + (gold and pred), fp + (pred and not gold), fn + (gold and not pred), tn + (not gold and not pred)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"split": split, "turns": tp + fp + fn + tn, "suggestion_turns": tp + fn, "precision": round(precision, 3),
            "recall": round(recall, 3), "f1": round(f1, 3)}
