"""The classifier suite: score any emotion classifier on GoEmotions and write a report.

    empathetic-bot eval classifier --emotion-classifier goemotions-minilm --data-dir ../shared/data/goemotions

Writes ``classifier.json`` (every figure, the configuration and the commit) and ``classifier.md``
(tables) and ``per_label_f1.png`` under ``--output``.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np

from eval.classifier import classifier_metrics, plot_per_label


def classifier_probabilities(clf, texts: list[str], label_names: list[str], batch_size: int = 64) -> np.ndarray:
    missing = [n for n in label_names if n not in clf.labels]
    if missing:
        raise ValueError(f"the classifier has no output for the dataset labels {missing}; it must predict GoEmotions labels")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), len(label_names)), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        for i, probs in zip(idx, clf.predict([texts[i] for i in idx])):
            out[i] = [probs[n] for n in label_names]
    return out


def turn_latency_ms(clf, texts: list[str], samples: int = 200) -> dict:
    """Classify one message at a time, as the bot does per turn: median and p90 in milliseconds."""
    clf.predict(texts[:1])  # warm-up
    times = []
    for text in texts[:samples]:
        t = time.perf_counter()
        clf.predict([text])
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return {"median_ms": round(statistics.median(times), 2), "p90_ms": round(times[int(0.9 * (len(times) - 1))], 2),
            "samples": len(times)}


def run(spec: str, data_dir: str | None, output: str, split: str = "test", limit: int | None = None,
        latency_samples: int = 200, device: str = "cpu") -> dict:
    from bot.emotion import EmotionClassifier
    from finetune.goemotions import load_split
    from finetune.train_classifier import git_commit

    clf = EmotionClassifier(spec, device=device)
    data = load_split(data_dir, split, limit)
    probs = classifier_probabilities(clf, data.texts, data.label_names)
    thresholds = np.array([clf.thresholds.get(n, 0.5) for n in data.label_names])
    report = {
        "suite": "classifier", "classifier": clf.resolved.description, "data": {"file": data.source, "sha256": data.sha256,
                                                                                "split": split, "n": len(data.texts)},
        "commit": git_commit(), "device": device,
        "tuned_thresholds": classifier_metrics(data.labels, probs, data.label_names, thresholds,
                                               clf.group_thresholds or None),
        "at_0.5": classifier_metrics(data.labels, probs, data.label_names, 0.5),
        "latency": turn_latency_ms(clf, data.texts, latency_samples) if latency_samples else None,
    }
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classifier.json").write_text(json.dumps(report, indent=1))
    plot_per_label(report["tuned_thresholds"], out / "per_label_f1.png",
                   title=f"GoEmotions {split}: per-label F1 (tuned thresholds)")
    (out / "classifier.md").write_text(markdown(report))
    return report


def markdown(report: dict) -> str:
    t, h = report["tuned_thresholds"], report["at_0.5"]
    lines = [f"# Emotion classifier: GoEmotions {report['data']['split']} ({report['data']['n']} comments)", "",
             f"Classifier: {report['classifier']}  ", f"Commit: {report['commit']}", "",
             "| figure | tuned thresholds | threshold 0.5 |", "| --- | --- | --- |"]
    for name, key in (("macro-F1, 28 labels", ("macro_f1",)), ("micro-F1, 28 labels", ("micro_f1",)),
                      ("macro-F1, Ekman (7)", ("ekman", "macro_f1")), ("macro-F1, sentiment (4)", ("sentiment", "macro_f1")),
                      ("expected calibration error", ("ece",))):
        a, b = t, h
        for k in key:
            a, b = a[k], b[k]
        lines.append(f"| {name} | {a:.3f} | {b:.3f} |")
        if key == ("ekman", "macro_f1") and "ekman_direct" in t:
            lines.append(f"| macro-F1, Ekman (7), each group against its own threshold | {t['ekman_direct']['macro_f1']:.3f} | |")
    if report.get("latency"):
        lat = report["latency"]
        lines += ["", f"One message classified in {lat['median_ms']} ms median ({lat['p90_ms']} ms p90, "
                      f"{lat['samples']} messages, one at a time, {report['device']})."]
    lines += ["", "| label | precision | recall | F1 | support |", "| --- | --- | --- | --- | --- |"]
    for label, m in sorted(t["per_label"].items(), key=lambda kv: -kv[1]["f1"]):
        lines.append(f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |")
    lines += ["", "![per-label F1](per_label_f1.png)", ""]
    return "\n".join(lines)
