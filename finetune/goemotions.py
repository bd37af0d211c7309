"""GoEmotions loading: the TSV files from a folder, or the hub dataset when a network is available.

Folder layout (as published, and as in the project's data folder): ``original/{train,dev,test}.tsv``
and ``original/labels.txt``; each TSV row is ``text <TAB> comma-separated label ids <TAB> comment id``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.resolve import file_sha256
from finetune.dialogue_data import DATA_ENV, data_root

HUB_ID = "google-research-datasets/go_emotions"


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # (n, n_labels) of 0/1
    label_names: list[str]
    source: str
    sha256: str | None = None


def find_goemotions_dir(data_dir: str | os.PathLike | None) -> Path | None:
    """The folder with train/dev/test.tsv, from an explicit path or ``$EMPATHETIC_BOT_DATA``."""
    root = data_root(str(data_dir) if data_dir else None)
    if root is None:
        return None
    for candidate in (root, root / "original", root / "goemotions" / "original", root / "goemotions"):
        if (candidate / "train.tsv").is_file() and (candidate / "labels.txt").is_file():
            return candidate
    return None


def load_split(data_dir: str | os.PathLike | None, split: str, limit: int | None = None) -> Split:
    """Load one split ("train", "dev" or "test"); rows with no valid label are dropped."""
    folder = find_goemotions_dir(data_dir)
    if folder is None:
        if data_dir:
            raise FileNotFoundError(
                f"no GoEmotions TSVs (train.tsv, labels.txt) under {data_dir}; give the folder that holds them "
                f"(or its parent), or leave --data-dir empty to download {HUB_ID} from the hub")
        return _load_from_hub(split, limit)
    names = [line.strip() for line in (folder / "labels.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    path = folder / f"{split}.tsv"
    texts, rows = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].strip():
            continue
        try:
            ids = [int(x) for x in parts[1].split(",") if x.strip()]
        except ValueError:
            continue
        ids = [i for i in ids if 0 <= i < len(names)]
        if not ids:
            continue
        texts.append(parts[0])
        rows.append(ids)
        if limit and len(texts) >= limit:
            break
    labels = np.zeros((len(texts), len(names)), dtype=np.float32)
    for r, ids in enumerate(rows):
        labels[r, ids] = 1.0
    return Split(texts, labels, names, str(path), file_sha256(path))


def _load_from_hub(split: str, limit: int | None) -> Split:
    try:
        from datasets import load_dataset
    except ImportError:
        raise FileNotFoundError(
            f"no GoEmotions folder given (--data-dir or ${DATA_ENV}) and the datasets package is not installed "
            f"to download {HUB_ID}: pip install datasets, or pass --data-dir") from None
    hub_split = {"dev": "validation"}.get(split, split)
    ds = load_dataset(HUB_ID, "simplified", split=hub_split)
    names = ds.features["labels"].feature.names
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    labels = np.zeros((len(ds), len(names)), dtype=np.float32)
    for r, ids in enumerate(ds["labels"]):
        labels[r, ids] = 1.0
    return Split(list(ds["text"]), labels, list(names), f"hub:{HUB_ID}/{hub_split}")
