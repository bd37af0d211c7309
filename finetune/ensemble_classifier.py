"""Join trained emotion classifiers into one ensemble: a label's probability is the mean of the members'.

    python -m finetune.ensemble_classifier runs/clf-ensemble runs/clf-a runs/clf-b \\
        --data-dir ../shared/data/goemotions

Each member is a folder ``finetune.train_classifier`` wrote (a LoRA adapter or a full model) over the
same encoder architecture, tokenizer and labels. Models trained apart (another seed, another loss)
make different mistakes, and their mean is read more accurately than either; the price is one
encoder pass per member for every message.

The output folder holds the members (only the files a classifier needs, plus their run summaries),
``classifier.json`` (form "ensemble"), the tokenizer, ``thresholds.json`` and ``group_thresholds.json``
tuned on dev for the mean probabilities, ``run_summary.json`` (members, data files and hashes, the
figures of every member alone and of the ensemble under one protocol, latency) and ``per_label_f1.png``.
The bot loads it as it loads any classifier folder (``--emotion-classifier runs/clf-ensemble``). Test
is read once, for the report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from bot.emotion import DEFAULT_GROUP_RULE, GROUP_RULES
from bot.errors import BotError

MEMBER_FILES = ("classifier.json", "adapter_config.json", "adapter_model.safetensors", "config.json",
                "model.safetensors", "run_summary.json")
HEADLINE = ("macro_f1", "micro_f1", "ece")


def _brief(metrics: dict) -> dict:
    """The headline figures of one classifier_metrics result (no per-label tables)."""
    out = {k: metrics[k] for k in HEADLINE}
    for key in ("ekman", "ekman_direct", "sentiment", "sentiment_direct"):
        if key in metrics:
            out[key] = metrics[key]["macro_f1"]
    return out


def _member_run(folder: Path) -> dict:
    path = folder / "run_summary.json"
    if not path.is_file():
        return {}
    s = json.loads(path.read_text())
    return {k: s.get(k) for k in ("config", "commit", "best", "form", "artifact_bytes", "wall_seconds", "calibration")
            if k in s}


def build(output: str, members: list[str], data_dir: str | None, group_rule: str = DEFAULT_GROUP_RULE,
          latency_samples: int = 200, limit_eval: int | None = None) -> dict:
    from bot.emotion import EmotionClassifier
    from eval.classifier import classifier_metrics, plot_per_label, tune_group_thresholds, tune_thresholds
    from eval.classifier_suite import classifier_probabilities, turn_latency_ms
    from finetune.goemotions import load_split
    from finetune.train_classifier import git_commit

    t_start, commit = time.time(), git_commit()
    sources = [Path(m) for m in members]
    names = [s.name for s in sources]
    if len(sources) < 2:
        raise ValueError("an ensemble needs at least two member folders")
    if len(set(names)) != len(names):
        raise ValueError(f"member folders need distinct names, got {names}")
    missing = [str(s) for s in sources if not s.is_dir()]
    if missing:
        raise ValueError(f"no such member folder: {', '.join(missing)}")
    out = Path(output).resolve()
    if any(s.resolve() == out for s in sources):
        raise ValueError("the output folder cannot be one of the members")
    dev, test = load_split(data_dir, "dev", limit_eval), load_split(data_dir, "test", limit_eval)
    labels = dev.label_names

    # every member alone, under one protocol: thresholds tuned on dev, test read once
    vocab, probs, alone = None, {}, {}
    for source in sources:
        clf = EmotionClassifier(str(source), cache_dir="")  # the transformers models, to combine
        if vocab is None:
            vocab, tokenizer = clf.tokenizer.get_vocab(), clf.tokenizer
        elif clf.tokenizer.get_vocab() != vocab:
            raise ValueError(f"{source} uses another tokenizer than {sources[0]}: members must share one encoder")
        pd, pt = (classifier_probabilities(clf, split.texts, labels) for split in (dev, test))
        probs[source.name] = (pd, pt)
        th, gth = tune_thresholds(dev.labels, pd), tune_group_thresholds(dev.labels, pd, labels, group_rule)
        alone[source.name] = {"source": str(source), "run": _member_run(source),
                              "dev": _brief(classifier_metrics(dev.labels, pd, labels, th, gth)),
                              "test_tuned": _brief(classifier_metrics(test.labels, pt, labels, th, gth))}
        print(f"{source.name}: dev macro-F1 {alone[source.name]['dev']['macro_f1']:.3f}", flush=True)
        del clf

    # the folder: members, tokenizer, classifier.json
    out.mkdir(parents=True, exist_ok=True)
    for source in sources:
        (out / source.name).mkdir(exist_ok=True)
        for name in MEMBER_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, out / source.name / name)
    tokenizer.save_pretrained(out)
    (out / "classifier.json").write_text(json.dumps({
        "form": "ensemble", "architecture": "BertMeanPoolEnsembleForSequenceClassification",
        "combine": "mean of the members' probabilities", "members": names, "labels": labels}, indent=1))

    # the ensemble: mean probabilities, thresholds tuned on dev, test once
    dev_probs = np.mean([p[0] for p in probs.values()], axis=0)
    test_probs = np.mean([p[1] for p in probs.values()], axis=0)
    thresholds = tune_thresholds(dev.labels, dev_probs)
    group_thresholds = tune_group_thresholds(dev.labels, dev_probs, labels, group_rule)
    metrics = {"dev": classifier_metrics(dev.labels, dev_probs, labels, thresholds, group_thresholds),
               "test_tuned": classifier_metrics(test.labels, test_probs, labels, thresholds, group_thresholds),
               "test_at_0.5": classifier_metrics(test.labels, test_probs, labels, 0.5)}
    (out / "thresholds.json").write_text(json.dumps(dict(zip(labels, map(float, thresholds))), indent=1))
    (out / "group_thresholds.json").write_text(json.dumps(group_thresholds, indent=1))

    # the saved folder loads as one classifier and reads as the mean did
    ensemble = EmotionClassifier(str(out), cache_dir="")
    sample = dev.texts[:64]
    gap = float(np.abs(classifier_probabilities(ensemble, sample, labels) - dev_probs[:64]).max())
    if gap > 1e-4:
        raise RuntimeError(f"the saved ensemble reads differently from its members' mean (max difference {gap:.2g})")
    latency = turn_latency_ms(ensemble, dev.texts, latency_samples) if latency_samples else None
    plot_per_label(metrics["test_tuned"], out / "per_label_f1.png",
                   title=f"GoEmotions test: per-label F1, ensemble of {len(names)}")
    summary = {
        "form": "ensemble", "config": {"members": [str(s) for s in sources], "data_dir": data_dir,
                                       "group_rule": group_rule, "limit_eval": limit_eval},
        "commit": commit, "data_files": {"dev": [dev.source, dev.sha256], "test": [test.source, test.sha256]},
        "members": alone, "metrics": metrics, "latency": latency, "max_member_mean_difference": gap,
        "artifact_bytes": sum(f.stat().st_size for s in names for f in (out / s).iterdir()
                              if f.name.endswith(".safetensors")),
        "wall_seconds": time.time() - t_start,
    }
    (out / "run_summary.json").write_text(json.dumps(summary, indent=1))
    t = metrics["test_tuned"]
    print(f"saved {out}: test macro-F1 {t['macro_f1']:.3f}, Ekman {t['ekman']['macro_f1']:.3f} (labels collapsed), "
          f"{t['ekman_direct']['macro_f1']:.3f} (group thresholds, {group_rule}); one message in "
          f"{latency['median_ms'] if latency else '?'} ms median")
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="folder to write the ensemble to")
    parser.add_argument("members", nargs="+", help="two or more classifier folders written by finetune.train_classifier")
    parser.add_argument("--data-dir", default=None, help="GoEmotions TSV folder (default $EMPATHETIC_BOT_DATA, else the hub)")
    parser.add_argument("--group-rule", default=DEFAULT_GROUP_RULE, choices=GROUP_RULES,
                        help="how group probabilities come from label probabilities")
    parser.add_argument("--latency-samples", type=int, default=200, help="messages timed one at a time (0: none)")
    parser.add_argument("--limit-eval", type=int, default=None, help="read only this many dev and test rows (for trials)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        build(args.output, args.members, args.data_dir, args.group_rule, args.latency_samples, args.limit_eval)
    except (ValueError, FileNotFoundError, BotError) as exc:
        parser.exit(2, f"error: {exc}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
