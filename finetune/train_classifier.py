"""Fine-tune a BERT encoder on GoEmotions (28 labels, multi-label) and save a classifier the bot loads.

    python -m finetune.train_classifier --data-dir ../shared/data/goemotions --output runs/clf
    python -m finetune.train_classifier --epochs 1 --limit-train 2000      # a quick run
    python -m finetune.train_classifier --base bert-base-uncased --batch-size 64   # any hub encoder

Every ``TrainConfig`` field is a ``--flag``. The recipe: mean-pooling head (see bot/emotion_model.py),
sigmoid + binary cross-entropy (or focal loss, optionally with per-label positive weights),
AdamW with linear warmup and decay, length-grouped batches, bf16 autocast on CUDA. The epoch with
the best dev macro-F1 is kept; per-label thresholds are tuned on dev; test is read once, at the end,
for the report. The saved weights are rounded to ``save_dtype`` before the final evaluation, so the
reported figures are those of the artifact on disk.

Output folder: ``config.json`` + ``model.safetensors`` + tokenizer (loadable by
``transformers.pipeline("text-classification", model=..., trust_remote_code=True)`` and by the bot),
or with ``--lora-r``: the adapter (``adapter_config.json`` + ``adapter_model.safetensors`` +
``classifier.json``, a few MB, loaded by the bot; ``python -m finetune.export_classifier`` merges it
into a folder ``pipeline`` loads),
``thresholds.json`` (per label), ``group_thresholds.json`` (per Ekman and sentiment group, on the group
probability made by ``--group-rule``: noisy-or by default, see ``bot.emotion.GROUP_RULES``), ``run_summary.json`` (config, commit, data files and hashes, metrics, timings),
``per_label_f1.png``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from bot.emotion import GROUP_RULES


@dataclass
class TrainConfig:
    data_dir: str | None = None  # GoEmotions TSV folder; default $EMPATHETIC_BOT_DATA, else the hub dataset
    base: str = "all-minilm-l6-v2"  # encoder: the embedded MiniLM, a folder or a hub id
    output: str = "runs/emotion-classifier"
    epochs: int = 8
    lr: float = 1e-4
    batch_size: int = 32
    max_length: int = 64
    weight_decay: float = 0.01
    warmup: float = 0.06  # share of steps with linear warmup
    loss: str = "bce"  # "bce" or "focal"
    focal_gamma: float = 2.0
    class_weights: bool = False  # positive weight per label: sqrt(negatives / positives); with bce, the saved
    #                               head's bias is shifted back by log(weight) so its probabilities stay calibrated
    group_rule: str = "noisy-or"  # how group probabilities come from label probabilities: "noisy-or" or "max"
    group_loss_weight: float = 0.0  # >0: add this times a BCE on the 7 Ekman groups (group logit: logsumexp of its labels')
    limit_train: int | None = None
    limit_eval: int | None = None
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # CPU threads for torch
    save_dtype: str = "float16"  # full fine-tuning: "float16" halves the artifact; "float32" keeps full precision
    lora_r: int = 0  # 0: full fine-tuning; >0: LoRA of this rank on the attention and feed-forward layers,
    #                 saved as the adapter (float32) plus classifier.json

    lora_alpha: int = 32
    eval_test: bool = True


CHOICES = {"loss": ("bce", "focal"), "group_rule": GROUP_RULES}


def parse_args(argv=None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for f in fields(TrainConfig):
        default = f.default
        if f.type in ("bool",) or isinstance(default, bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}", default=default,
                                type=lambda s: s.lower() in ("1", "true", "yes", "on"), metavar="BOOL")
        else:
            kind = {"int | None": int, "int": int, "float": float}.get(str(f.type), str)
            parser.add_argument(f"--{f.name.replace('_', '-')}", default=default, type=kind, choices=CHOICES.get(f.name))
    return TrainConfig(**vars(parser.parse_args(argv)))


def git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def collate(ids: list[list[int]], pad_id: int, device):
    import torch

    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for r, x in enumerate(ids):
        input_ids[r, :len(x)] = torch.tensor(x)
        mask[r, :len(x)] = 1
    return input_ids.to(device), mask.to(device)


def predict(model, token_ids: list[list[int]], pad_id: int, device, batch_size: int = 128) -> np.ndarray:
    """Sigmoid probabilities, (n, labels), in the original order."""
    import torch

    model.eval()
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    out = np.zeros((len(token_ids), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            input_ids, mask = collate([token_ids[i] for i in idx], pad_id, device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(input_ids=input_ids, attention_mask=mask).logits
            out[idx] = torch.sigmoid(logits.float()).cpu().numpy()
    return out


def loss_fn(cfg: TrainConfig, pos_weight):
    import torch.nn.functional as F

    def bce(logits, target):
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)

    def focal(logits, target):
        ce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight, reduction="none")
        p = logits.sigmoid()
        p_t = p * target + (1 - p) * (1 - target)
        return ((1 - p_t) ** cfg.focal_gamma * ce).mean()

    if cfg.loss not in ("bce", "focal"):
        raise ValueError("loss must be 'bce' or 'focal'")
    return bce if cfg.loss == "bce" else focal


def undo_class_weights(model, pos_weight) -> None:
    """Make a head trained with per-label positive weights give calibrated probabilities again.

    Binary cross-entropy with positive weight ``w`` is minimised by odds ``w`` times the true odds
    (``w q (1 - p) = (1 - q) p``), so every logit reads ``log w`` too high: subtract it from the
    head's bias. Rankings, and so per-label thresholds tuned afterwards, are unchanged; the
    probabilities the tracker folds across turns, and a mean over ensemble members, are not."""
    import torch

    shift = torch.log(pos_weight.detach().float().cpu())
    with torch.no_grad():
        for name, module in model.named_modules():
            if (isinstance(module, torch.nn.Linear) and "classifier" in name.split(".")
                    and module.out_features == shift.numel() and module.bias is not None):
                module.bias -= shift.to(module.bias.device, module.bias.dtype)


def group_loss(label_names: list[str], weight: float):
    """A BCE on the Ekman groups, read from the 28 label logits: a group's logit is the logsumexp of its
    labels' logits (a smooth "any of them"). None when ``weight`` is 0."""
    if weight <= 0:
        return None
    import torch
    import torch.nn.functional as F

    from bot.emotion import EKMAN_GROUPS

    index = {n: i for i, n in enumerate(label_names)}
    members = [[index[n] for n in labels if n in index] for labels in EKMAN_GROUPS.values()]
    members = [m for m in members if m]

    def loss(logits, target):
        group_logits = torch.stack([logits[:, m].logsumexp(dim=1) for m in members], dim=1)
        group_target = torch.stack([target[:, m].amax(dim=1) for m in members], dim=1)
        return weight * F.binary_cross_entropy_with_logits(group_logits, group_target)

    return loss


def save_adapter_form(peft_model, out_dir: Path, encoder_spec: str, label_names: list[str]) -> None:
    """Write a LoRA-trained classifier as its adapter: PEFT's ``adapter_config.json`` and
    ``adapter_model.safetensors`` (LoRA matrices and the classification head), plus ``classifier.json``
    naming the encoder (a spec ``bot.resolve.resolve_encoder`` reads) and the labels. A few MB instead of
    a full copy of the encoder; ``python -m finetune.export_classifier`` writes the merged model."""
    peft_model.save_pretrained(out_dir)
    config_file = out_dir / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = encoder_spec  # not this machine's path to it
    config_file.write_text(json.dumps(config, indent=1))
    (out_dir / "README.md").unlink(missing_ok=True)  # PEFT's template card; the model card replaces it
    (out_dir / "classifier.json").write_text(json.dumps({
        "form": "lora-adapter", "encoder": encoder_spec, "architecture": "BertMeanPoolForSequenceClassification",
        "problem_type": "multi_label_classification", "labels": list(label_names)}, indent=1))


def train(cfg: TrainConfig) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from finetune.batching import length_grouped_batches, optimizer_step

    from bot.emotion import new_classifier
    from bot.emotion_model import BertMeanPoolForSequenceClassification
    from bot.generation import pick_dtype
    from bot.resolve import resolve_encoder
    from eval.classifier import classifier_metrics, plot_per_label, tune_group_thresholds, tune_thresholds
    from finetune.goemotions import load_split

    t_start, commit = time.time(), git_commit()  # the code that runs, before anything can change it
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device("cuda" if cfg.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if cfg.device == "auto" else cfg.device))
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)

    # ---- data --------------------------------------------------------------------------------------
    train_split = load_split(cfg.data_dir, "train", cfg.limit_train)
    dev_split = load_split(cfg.data_dir, "dev", cfg.limit_eval)
    names = train_split.label_names
    encoder = resolve_encoder(cfg.base)
    tokenizer = AutoTokenizer.from_pretrained(encoder.location)

    def encode(texts):
        return tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"]

    train_ids, dev_ids = encode(train_split.texts), encode(dev_split.texts)
    pad_id = tokenizer.pad_token_id or 0
    print(f"train {len(train_ids)} / dev {len(dev_ids)} examples, {len(names)} labels, device {device}")

    # ---- model -------------------------------------------------------------------------------------
    model = new_classifier(encoder.location, names).to(device)
    if cfg.lora_r > 0:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.1, modules_to_save=["classifier"],
            target_modules=["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"trainable parameters: {trainable:,}")
    positives = train_split.labels.sum(0)
    pos_weight = None
    if cfg.class_weights:
        neg = len(train_split.labels) - positives
        pos_weight = torch.tensor(np.sqrt(neg / np.maximum(positives, 1)), dtype=torch.float32, device=device)
    criterion = loss_fn(cfg, pos_weight)
    criterion_groups = group_loss(names, cfg.group_loss_weight)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total_steps), total_steps)
    targets = torch.tensor(train_split.labels)
    rng = random.Random(cfg.seed)

    # ---- train -------------------------------------------------------------------------------------
    history, best = [], {"dev_macro_f1": -1.0}
    best_state = None
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t_epoch, seen_tokens, losses = time.time(), 0, []
        bar = tqdm(length_grouped_batches([len(x) for x in train_ids], cfg.batch_size, rng),
                   desc=f"epoch {epoch}/{cfg.epochs}", mininterval=5)
        for batch in bar:
            input_ids, mask = collate([train_ids[i] for i in batch], pad_id, device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(input_ids=input_ids, attention_mask=mask).logits
            target = targets[batch].to(device)
            loss = criterion(logits.float(), target)
            if criterion_groups is not None:
                loss = loss + criterion_groups(logits.float(), target)
            losses.append(optimizer_step(loss, model, optimizer, scheduler))
            seen_tokens += int(mask.sum())
            if len(losses) % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        dev_probs = predict(model, dev_ids, pad_id, device)
        dev_at_half = classifier_metrics(dev_split.labels, dev_probs, names, 0.5)["macro_f1"]
        dev_fit = classifier_metrics(dev_split.labels, dev_probs, names, tune_thresholds(dev_split.labels, dev_probs),
                                     tune_group_thresholds(dev_split.labels, dev_probs, names, cfg.group_rule))
        dev_tuned = dev_fit["macro_f1"]
        elapsed = time.time() - t_epoch
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "first_loss": float(np.mean(losses[:20])),
               "last_loss": float(np.mean(losses[-20:])), "dev_macro_f1_at_0.5": dev_at_half,
               "dev_macro_f1_tuned": dev_tuned, "dev_ekman_f1_tuned": dev_fit["ekman_direct"]["macro_f1"], "seconds": elapsed, "train_tokens_per_s": seen_tokens / elapsed}
        history.append(row)
        print(json.dumps(row))
        if dev_tuned > best["dev_macro_f1"]:
            best = {"epoch": epoch, "dev_macro_f1": dev_tuned}
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    # ---- keep the best epoch, round to the saved dtype, tune thresholds, test once ------------------
    model.load_state_dict(best_state)
    if pos_weight is not None and cfg.loss == "bce":
        undo_class_weights(model, pos_weight)
    if cfg.lora_r > 0:
        # The artifact is the adapter (LoRA + head, float32); the figures are those of the base with it
        # merged in, exactly as ``EmotionClassifier`` loads it.
        save_adapter_form(model, out_dir, cfg.base, names)
        model = model.merge_and_unload()
    else:
        save_dtype = pick_dtype(cfg.save_dtype, "cpu")
        model = model.to(save_dtype).to(torch.float32)  # the weights the artifact holds
    dev_probs = predict(model, dev_ids, pad_id, device)
    thresholds = tune_thresholds(dev_split.labels, dev_probs)
    group_thresholds = tune_group_thresholds(dev_split.labels, dev_probs, names, cfg.group_rule)
    metrics = {"dev": classifier_metrics(dev_split.labels, dev_probs, names, thresholds, group_thresholds)}
    data_files = {"train": [train_split.source, train_split.sha256], "dev": [dev_split.source, dev_split.sha256]}
    if cfg.eval_test:
        test_split = load_split(cfg.data_dir, "test", cfg.limit_eval)
        test_probs = predict(model, encode(test_split.texts), pad_id, device)
        metrics["test_tuned"] = classifier_metrics(test_split.labels, test_probs, names, thresholds, group_thresholds)
        metrics["test_at_0.5"] = classifier_metrics(test_split.labels, test_probs, names, 0.5)
        data_files["test"] = [test_split.source, test_split.sha256]
        plot_per_label(metrics["test_tuned"], out_dir / "per_label_f1.png")

    # ---- save --------------------------------------------------------------------------------------
    if cfg.lora_r > 0:
        weights = out_dir / "adapter_model.safetensors"
    else:
        BertMeanPoolForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
        model.to(save_dtype).save_pretrained(out_dir)
        weights = out_dir / "model.safetensors"
    tokenizer.model_max_length = cfg.max_length
    tokenizer.save_pretrained(out_dir)
    (out_dir / "thresholds.json").write_text(json.dumps(dict(zip(names, map(float, thresholds))), indent=1))
    (out_dir / "group_thresholds.json").write_text(json.dumps(group_thresholds, indent=1))
    summary = {
        "config": asdict(cfg), "commit": commit, "encoder": encoder.description, "device": str(device),
        "torch": torch.__version__, "data_files": data_files, "best": best, "history": history,
        "metrics": metrics, "wall_seconds": time.time() - t_start, "trainable_parameters": trainable,
        "artifact_bytes": weights.stat().st_size, "form": "lora-adapter" if cfg.lora_r > 0 else "full",
        "peak_cuda_memory_mb": (torch.cuda.max_memory_allocated() / 2**20) if device.type == "cuda" else None,
    }
    (out_dir / "run_summary.json").write_text(json.dumps(summary, indent=1))
    headline = metrics.get("test_tuned", metrics["dev"])
    print(f"saved {out_dir}: macro-F1 {headline['macro_f1']:.3f}, Ekman macro-F1 {headline['ekman']['macro_f1']:.3f} "
          f"(labels collapsed), {headline['ekman_direct']['macro_f1']:.3f} (group thresholds) "
          f"({'test' if cfg.eval_test else 'dev'}, thresholds tuned on dev); best epoch {best['epoch']}")
    return summary


def main(argv=None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
