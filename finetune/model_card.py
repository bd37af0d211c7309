"""Write the model card (README.md) of a trained emotion classifier from its run_summary.json.

    python -m finetune.model_card bot/models/goemotions-minilm
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ANCHORS = (
    "Published anchors: BERT-base reaches macro-F1 0.46 on the 28 labels and 0.64 on the Ekman groups "
    "(Demszky et al., 2020, GoEmotions, ACL; the Ekman figure is for a model trained on the Ekman labels)."
)


def _row(name: str, tuned: float, half: float) -> str:
    return f"| {name} | {tuned:.3f} | {half:.3f} |"


def render(summary: dict, size_mb: float) -> str:
    cfg, m = summary["config"], summary["metrics"]
    t, h = m["test_tuned"], m["test_at_0.5"]
    best = summary["best"]
    args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in cfg.items()
                    if k in ("epochs", "lr", "batch_size", "max_length", "loss", "class_weights", "seed", "save_dtype")
                    or (k in ("group_loss_weight", "lora_r", "lora_alpha") and cfg.get("lora_r" if k == "lora_alpha" else k)))
    direct = ""
    if "ekman_direct" in t:
        direct = (f"\n| macro-F1, Ekman groups (each group's probability against its own threshold tuned on dev) "
                  f"| {t['ekman_direct']['macro_f1']:.3f} | |")
    tuning = ("fully fine-tuned" if not cfg.get("lora_r") else
              f"fine-tuned with LoRA (rank {cfg['lora_r']}, merged into the weights; the head trained in full)")
    group_loss = ("" if not cfg.get("group_loss_weight") else
                  f" plus {cfg['group_loss_weight']} x a binary cross-entropy on the 7 Ekman groups (a group's "
                  "logit: the logsumexp of its labels' logits)")
    per_label = "\n".join(
        f"| {label} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
        for label, v in sorted(t["per_label"].items(), key=lambda kv: -kv[1]["f1"]))
    weakest = ", ".join(k for k, _ in sorted(t["per_label"].items(), key=lambda kv: kv[1]["f1"])[:4])
    return f"""---
license: apache-2.0
language: en
pipeline_tag: text-classification
datasets: [google-research-datasets/go_emotions]
base_model: sentence-transformers/all-MiniLM-L6-v2
---
# goemotions-minilm: a small emotion classifier for every chat turn

Reads one message and gives a probability for each of the 28 GoEmotions labels (27 emotions and
neutral, multi-label). It is the emotion classifier the empathetic bot runs on every user turn.

- Encoder: all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7M parameters), {tuning}, with a
  mean-pooling head (`emotion_model.py`): the encoder was trained to be read by averaging token vectors.
- Stored in {cfg['save_dtype']}: {size_mb:.1f} MB. Per-label decision thresholds tuned on dev: `thresholds.json`;
  per Ekman and sentiment group: `group_thresholds.json` (a group's probability is its most probable label's).

## Use
```python
from transformers import pipeline
clf = pipeline("text-classification", model="path/to/goemotions-minilm", trust_remote_code=True, top_k=None,
               dtype="float32")  # stored in float16; compute in float32 on a CPU
clf("I can't believe I failed again, I'm so frustrated")
```
`trust_remote_code=True` runs `emotion_model.py` from this folder (30 lines: BERT, mean pooling, one
linear layer). The bot loads the same class from its own package, without remote code:
`EmotionClassifier("goemotions-minilm")`.

## Results (GoEmotions test set, {t['n_examples']} comments; read once, after training)
| figure | per-label thresholds tuned on dev | threshold 0.5 |
| --- | --- | --- |
{_row("macro-F1, 28 labels", t["macro_f1"], h["macro_f1"])}
{_row("micro-F1, 28 labels", t["micro_f1"], h["micro_f1"])}
{_row("macro-F1, Ekman groups (28-label predictions collapsed)", t["ekman"]["macro_f1"], h["ekman"]["macro_f1"])}{direct}
{_row("macro-F1, sentiment groups", t["sentiment"]["macro_f1"], h["sentiment"]["macro_f1"])}
{_row("expected calibration error (10 bins, all label decisions)", t["ece"], h["ece"])}

{ANCHORS}

Per label (tuned thresholds):

| label | precision | recall | F1 | support |
| --- | --- | --- | --- | --- |
{per_label}

![per-label F1](per_label_f1.png)

## Training
Data: GoEmotions "simplified" train split (43,410 Reddit comments; dev 5,426 for model selection and
thresholds; test 5,427 for this report only). Files and SHA-256 hashes are in `run_summary.json`.

```
python -m finetune.train_classifier --data-dir <GoEmotions folder> {args}
```
Sigmoid outputs, binary cross-entropy{group_loss}, AdamW (weight decay {cfg['weight_decay']}), linear warmup
({cfg['warmup']:.0%}) and decay, length-grouped batches, max length {cfg['max_length']} tokens, seed
{cfg['seed']}. Best epoch by dev macro-F1: {best['epoch']} of {cfg['epochs']}. Device: {summary['device']},
wall time {summary['wall_seconds'] / 60:.0f} min, commit {summary['commit']}.

## License and limits
- Code and weights: Apache-2.0. GoEmotions is Apache-2.0 (Demszky et al., 2020); all-MiniLM-L6-v2 is Apache-2.0.
- English Reddit comments from 2005-2019: other languages, registers and cultures are read less well.
  Labels with few training examples are the weakest ({weakest}).
- Labels are raters' readings of short comments, not what the writer felt; use the output as a hint
  for the conversation, never as a judgement about a person.
"""


def main(argv=None) -> int:
    folder = Path((argv or sys.argv[1:])[0])
    summary = json.loads((folder / "run_summary.json").read_text())
    size = (folder / "model.safetensors").stat().st_size / 2**20
    (folder / "README.md").write_text(render(summary, size))
    print(f"wrote {folder / 'README.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
