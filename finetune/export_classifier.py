"""Write an emotion classifier as one self-contained folder that ``transformers.pipeline`` loads.

    python -m finetune.export_classifier goemotions-minilm exports/goemotions-minilm
    python -m finetune.export_classifier runs/clf exports/clf --dtype float16

A classifier saved as a LoRA adapter over the all-MiniLM-L6-v2 encoder (a few MB) is merged into the
encoder; an ensemble becomes one model holding every member (its outputs are the log-odds of the
members' mean probability). The export writes ``config.json`` + ``model.safetensors`` + tokenizer +
``emotion_model.py`` (the mean-pooling head, run with ``trust_remote_code=True``) and the threshold
files, so the classifier can be used without this project:

    pipeline("text-classification", model="exports/goemotions-minilm", trust_remote_code=True,
             top_k=None, dtype="float32")
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def export(spec: str, output: str, dtype: str = "float32") -> Path:
    from bot.emotion import EmotionClassifier
    from bot import emotion_model
    from bot.generation import pick_dtype

    torch_dtype = pick_dtype(dtype, "cpu")  # before loading anything: an unknown dtype fails fast
    clf = EmotionClassifier(spec, cache_dir="")  # the transformers model itself, to save
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    model = clf.model
    for ours in (emotion_model.BertMeanPoolForSequenceClassification,
                 emotion_model.BertMeanPoolEnsembleForSequenceClassification):
        if type(model) is ours:  # the project's own heads travel as emotion_model.py (trust_remote_code)
            ours.register_for_auto_class("AutoModelForSequenceClassification")
    model.to(torch_dtype).save_pretrained(out)
    clf.tokenizer.save_pretrained(out)
    source = Path(clf.resolved.location)
    for name in ("thresholds.json", "group_thresholds.json", "README.md"):
        if clf.resolved.is_local and (source / name).is_file():
            shutil.copyfile(source / name, out / name)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("classifier", help="goemotions-minilm (the shipped one), a folder or a hub id")
    parser.add_argument("output", help="folder to write")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="float32 (default: the reported figures), float16 or bfloat16")
    args = parser.parse_args(argv)
    out = export(args.classifier, args.output, args.dtype)
    print(f"wrote {out}: load it with transformers.pipeline('text-classification', model='{out}', "
          f"trust_remote_code=True, top_k=None)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
