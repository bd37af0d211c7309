"""EPITOME empathy scorers: emotional reactions, interpretations, explorations (levels 0 / 1 / 2).

EPITOME (Sharma, Miner, Atkins & Althoff, EMNLP 2020, "A Computational Approach to Understanding
Empathy Expressed in Text-Based Mental Health Support") rates a response to a seeker's post on three
communication mechanisms, each as no (0), weak (1) or strong (2):

* emotional reactions (ER): the responder expresses warmth, compassion, concern;
* interpretations (IP): the responder shows they understood the seeker's feelings or experience;
* explorations (EX): the responder asks about what the seeker has not yet said.

The suite trains its own scorer on the public Reddit part (``epitome/*.csv``, 3,084 rated pairs):
one encoder (the embedded MiniLM by default) reads ``seeker post [SEP] response`` and a mean-pooling
head gives three 3-way distributions (see ``bot/emotion_model.py``); the loss is the sum of the three
class-weighted cross-entropies. The split is fixed and documented: pairs are grouped by seeker post
and ``sha256(sp_id) mod 10`` puts 0 in test, 1 in dev and the rest in train, so no seeker post is in
two splits. The epoch with the best mean dev macro-F1 is kept; test is read once, for the report.

The trained scorer is cached (``<cache>/epitome-scorer/<key>``, the key hashing the data files and the
training settings), so only the first run pays for training. The data's terms (non-commercial
research use, with citation) apply to the trained scorer too; it is never shipped in the package.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

MECHANISMS = ("emotional_reactions", "interpretations", "explorations")
FILES = {"emotional_reactions": "emotional-reactions-reddit.csv", "interpretations": "interpretations-reddit.csv",
         "explorations": "explorations-reddit.csv"}
LEVELS = 3


@dataclass
class Pair:
    sp_id: str
    rp_id: str
    seeker: str
    response: str
    levels: tuple[int, int, int]

    @property
    def split(self) -> str:
        return split_of(self.sp_id)


def split_of(sp_id: str) -> str:
    bucket = int(hashlib.sha256(sp_id.encode("utf-8")).hexdigest(), 16) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def find_epitome(data_dir: str | None) -> Path:
    """``data_dir`` may be the epitome/ folder itself or a folder holding it (``$EMPATHETIC_BOT_DATA``)."""
    from finetune.dialogue_data import data_root

    root = data_root(data_dir)
    if root is None:
        raise FileNotFoundError("the empathy scorers are trained on EPITOME: give --data-dir with epitome/*.csv "
                                "(or set EMPATHETIC_BOT_DATA)")
    for folder in (root, root / "epitome"):
        if all((folder / f).is_file() for f in FILES.values()):
            return folder
    raise FileNotFoundError(f"no EPITOME files ({', '.join(FILES.values())}) in {root} or {root / 'epitome'}")


def load_pairs(folder: Path) -> tuple[list[Pair], dict]:
    """The rated pairs present in all three files, once each (the first rating of a repeated pair wins)."""
    ratings: dict[tuple[str, str], dict] = {}
    repeated = 0
    for i, mech in enumerate(MECHANISMS):
        seen = set()
        with open(folder / FILES[mech], encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                key = (row["sp_id"], row["rp_id"])
                if key in seen:
                    repeated += 1
                    continue
                seen.add(key)
                try:
                    level = int(row["level"])
                except (TypeError, ValueError):
                    continue
                if level not in (0, 1, 2):
                    continue
                d = ratings.setdefault(key, {"seeker": row["seeker_post"] or "", "response": row["response_post"] or "",
                                             "levels": [None] * 3})
                d["levels"][i] = level
    pairs = [Pair(k[0], k[1], d["seeker"], d["response"], tuple(d["levels"]))
             for k, d in ratings.items() if None not in d["levels"]]
    pairs.sort(key=lambda p: (p.sp_id, p.rp_id))
    return pairs, {"pairs": len(pairs), "repeated_rows_dropped": repeated}


@dataclass
class ScorerConfig:
    encoder: str = "all-minilm-l6-v2"
    epochs: int = 5
    lr: float = 1e-4
    batch_size: int = 16
    max_length: int = 192
    seed: int = 0
    limit_train: int | None = None  # for quick runs and tests

    def key(self, data_hash: str) -> str:
        blob = json.dumps({**asdict(self), "data": data_hash}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def data_hash(folder: Path) -> str:
    from bot.resolve import file_sha256

    return hashlib.sha256("".join(file_sha256(folder / FILES[m]) for m in MECHANISMS).encode()).hexdigest()


def _class_weights(levels: np.ndarray) -> np.ndarray:
    """Per mechanism and level: sqrt(n / (3 * count)), so rare levels count more but not wildly more."""
    w = np.ones((3, LEVELS), dtype=np.float32)
    for m in range(3):
        counts = np.bincount(levels[:, m], minlength=LEVELS).astype(np.float64)
        w[m] = np.sqrt(len(levels) / (LEVELS * np.maximum(counts, 1)))
    return w


def macro_f1_by_mechanism(gold: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {mech: float(f1_score(gold[:, m], pred[:, m], labels=[0, 1, 2], average="macro", zero_division=0))
            for m, mech in enumerate(MECHANISMS)}


class EpitomeScorer:
    """A trained scorer: ``score(seekers, responses)`` -> levels and probabilities per mechanism."""

    def __init__(self, folder: str | Path, device: str = "cpu"):
        import torch
        from transformers import AutoTokenizer

        from bot.emotion_model import BertMeanPoolForSequenceClassification

        self.folder = Path(folder)
        self.info = json.loads((self.folder / "scorer.json").read_text())
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = BertMeanPoolForSequenceClassification.from_pretrained(self.folder, dtype=torch.float32).to(device).eval()
        self.device = device
        self.max_length = self.info["config"]["max_length"]

    def probabilities(self, seekers: list[str], responses: list[str], batch_size: int = 32) -> np.ndarray:
        """(n, 3 mechanisms, 3 levels) probabilities."""
        return _predict(self.model, self.tokenizer, seekers, responses, self.max_length, self.device, batch_size)

    def score(self, seekers: list[str], responses: list[str]) -> dict[str, np.ndarray]:
        probs = self.probabilities(seekers, responses)
        return {mech: probs[:, m].argmax(-1) for m, mech in enumerate(MECHANISMS)}


def _encode(tokenizer, seeker: str, response: str, max_length: int) -> list[int]:
    """``[CLS] seeker [SEP] response [SEP]`` (BERT-style encoders) in ``max_length`` tokens. The response is what is rated, so
    it keeps its room; the seeker post keeps at least its first 32 tokens (or what is left)."""
    s_ids = tokenizer(seeker or "", add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(response or "", add_special_tokens=False)["input_ids"]
    budget = max_length - 3
    r_ids = r_ids[: budget - min(len(s_ids), 32)]
    s_ids = s_ids[: budget - len(r_ids)]
    return [tokenizer.cls_token_id, *s_ids, tokenizer.sep_token_id, *r_ids, tokenizer.sep_token_id]


def _predict(model, tokenizer, seekers, responses, max_length, device, batch_size=32) -> np.ndarray:
    import torch

    from finetune.train_classifier import collate

    ids = [_encode(tokenizer, s, r, max_length) for s, r in zip(seekers, responses)]
    pad = tokenizer.pad_token_id or 0
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), 3, LEVELS), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            input_ids, mask = collate([ids[i] for i in idx], pad, torch.device(device))
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float().view(-1, 3, LEVELS)
            out[idx] = torch.softmax(logits, -1).cpu().numpy()
    return out


def train_scorer(folder: Path, output: Path, cfg: ScorerConfig, progress: bool = True) -> dict:
    """Train, pick the best epoch on dev, report dev and test macro-F1, save to ``output``."""
    import torch
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from bot.emotion_model import BertMeanPoolForSequenceClassification
    from bot.resolve import resolve_encoder
    from finetune.batching import length_grouped_batches
    from finetune.train_classifier import collate, git_commit

    t0 = time.time()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    pairs, counts = load_pairs(folder)
    split = {name: [p for p in pairs if p.split == name] for name in ("train", "dev", "test")}
    if cfg.limit_train:
        split["train"] = split["train"][: cfg.limit_train]
    encoder = resolve_encoder(cfg.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder.location)
    names = [f"{m}={lv}" for m in MECHANISMS for lv in range(LEVELS)]
    model = BertMeanPoolForSequenceClassification.from_pretrained(
        encoder.location, num_labels=len(names), id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)})
    train_ids = [_encode(tokenizer, p.seeker, p.response, cfg.max_length) for p in split["train"]]
    y_train = torch.tensor([p.levels for p in split["train"]])
    weights = torch.tensor(_class_weights(y_train.numpy()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    steps = math.ceil(len(train_ids) / cfg.batch_size) * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)
    rng = random.Random(cfg.seed)
    pad = tokenizer.pad_token_id or 0
    device = torch.device("cpu")

    def evaluate(rows: list[Pair]) -> dict[str, float]:
        if not rows:
            return {m: float("nan") for m in MECHANISMS}
        probs = _predict(model, tokenizer, [p.seeker for p in rows], [p.response for p in rows], cfg.max_length, "cpu")
        return macro_f1_by_mechanism(np.array([p.levels for p in rows]), probs.argmax(-1))

    history, best, best_state = [], None, None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total, n = 0.0, 0
        for batch in length_grouped_batches([len(x) for x in train_ids], cfg.batch_size, rng):
            input_ids, mask = collate([train_ids[i] for i in batch], pad, device)
            logits = model(input_ids=input_ids, attention_mask=mask).logits.view(-1, 3, LEVELS)
            target = y_train[batch]
            loss = sum(torch.nn.functional.cross_entropy(logits[:, m], target[:, m], weight=weights[m]) for m in range(3))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total, n = total + loss.item(), n + 1
        dev = evaluate(split["dev"])
        mean_dev = float(np.mean(list(dev.values())))
        history.append({"epoch": epoch, "train_loss": round(total / max(n, 1), 4), "dev_macro_f1": dev})
        if progress:
            print(f"  empathy scorer epoch {epoch}/{cfg.epochs}: loss {total / max(n, 1):.3f}, dev macro-F1 "
                  + " / ".join(f"{v:.3f}" for v in dev.values()) + f" ({time.time() - t0:.0f} s)", flush=True)
        if best is None or mean_dev > best[0]:
            best, best_state = (mean_dev, history[-1]), {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    best_epoch, best_dev = best[1]["epoch"], best[1]["dev_macro_f1"]
    info = {
        "config": asdict(cfg), "encoder": encoder.description, "commit": git_commit(),
        "data": {"folder": str(folder), "sha256": data_hash(folder), **counts,
                 "split": {k: len(v) for k, v in split.items()},
                 "split_rule": "group by seeker post; sha256(sp_id) mod 10: 0 test, 1 dev, else train"},
        "history": history, "best_epoch": best_epoch,
        "dev_macro_f1": best_dev, "test_macro_f1": evaluate(split["test"]),
        "train_seconds": round(time.time() - t0, 1),
    }
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    (output / "scorer.json").write_text(json.dumps(info, indent=1))
    return info


def cached_scorer(data_dir: str | None, cfg: ScorerConfig | None = None, cache_dir: str | None = None,
                  progress: bool = True) -> EpitomeScorer:
    """The scorer trained with ``cfg`` on the EPITOME files under ``data_dir``: from the cache, or trained now."""
    from bot.generation import default_cache_dir

    cfg = cfg or ScorerConfig()
    folder = find_epitome(data_dir)
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    target = root / "epitome-scorer" / cfg.key(data_hash(folder))
    if not (target / "scorer.json").is_file():
        if progress:
            print(f"training the EPITOME empathy scorers once (cached in {target}); about 10 minutes on 2 CPU cores",
                  flush=True)
        tmp = target.with_name(target.name + ".partial")
        train_scorer(folder, tmp, cfg, progress)
        if target.exists():  # another process finished first
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(target)
    return EpitomeScorer(target)
