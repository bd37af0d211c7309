"""Train the response ranker: the encoder learns to place a conversation near the replies that fit it.

    python -m finetune.train_ranker --data-dir ../shared/data --output runs/ranker
    python -m finetune.train_ranker --data-dir ../shared/data --sources esconv --output runs/ranker-esconv

Every listener / supporter turn of EmpatheticDialogues train and ESConv train is one training context,
its human reply the positive. A batch of B contexts is scored against every reply in the batch: the B
positives and, for each context, three hard negatives:

* ``same_emotion``: a reply from another conversation with the same emotion label;
* ``same_conversation``: a reply from another turn of the same conversation (fits the topic, not the moment);
* ``lexical``: the reply to the most similar other context by TF-IDF (fits the words, not the situation).

so each context sees 4B - 1 negatives. The loss is the cross-entropy of its own reply among them
(scale x cosine, as in sentence-transformers' multiple-negatives ranking loss). The model is a LoRA
adapter over all-MiniLM-L6-v2 (a few MB; ``ranker.json`` names the encoder). Model selection uses
recall@1 of 10 on ED valid; the test split is read only with ``--eval-test``, once, at the end.
``--max-minutes`` stops training early (the learning-rate schedule is planned for the steps that fit).
The figures of the ranker and of two baselines (TF-IDF cosine, the untrained encoder's cosine) go to
``run_summary.json``.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

NEGATIVE_KINDS = ("same_emotion", "same_conversation", "lexical")


@dataclass
class RankerConfig:
    data_dir: str | None = None
    output: str = "runs/ranker"
    sources: str = "empatheticdialogues,esconv"
    base: str = "all-minilm-l6-v2"
    limit_train: int | None = None  # training contexts (a random subset); None: all
    epochs: int = 1
    batch_size: int = 16  # contexts per step; each brings its reply and 3 hard negatives
    lr: float = 5e-4
    scale: float = 20.0
    warmup: float = 0.05
    lora_r: int = 16
    lora_alpha: int = 32
    max_minutes: float | None = None
    dev_contexts: int = 400
    eval_every: int = 250
    test_contexts: int = 1000
    eval_test: bool = False
    seed: int = 0
    threads: int | None = None


def parse_args(argv=None) -> RankerConfig:
    from finetune.options import parse_config

    return parse_config(RankerConfig, argv, __doc__)


# ---- data ----------------------------------------------------------------------------------------------
def reply_examples(data_dir: str | None, sources: str, splits: tuple[str, ...]) -> list[dict]:
    """One item per listener turn: ``{"context", "reply", "conv", "emotion", "source", "split"}``."""
    from bot.ranker import context_text
    from finetune.dialogue_data import data_root, read_empathetic_dialogues, read_esconv

    root = data_root(data_dir)
    if root is None:
        raise FileNotFoundError("give --data-dir (or $EMPATHETIC_BOT_DATA) with empatheticdialogues/ and esconv/")
    readers = {"empatheticdialogues": read_empathetic_dialogues, "esconv": read_esconv}
    out = []
    for name in sources.split(","):
        name = name.strip()
        if name not in readers:
            raise ValueError(f"unknown source {name!r}; known: {', '.join(readers)}")
        for conv in readers[name](root / name):
            if conv.split not in splits:
                continue
            for i, m in enumerate(conv.messages):
                if m["role"] == "assistant" and i > 0:
                    out.append({"context": context_text(conv.messages[:i]), "reply": m["content"], "conv": conv.id,
                                "emotion": conv.emotion, "source": name, "split": conv.split,
                                "last_user": conv.messages[i - 1]["content"]})
    return out


def lexical_neighbours(examples: list[dict], picked: list[int], chunk: int = 2000) -> dict[int, int]:
    """For each picked example, the index of the example from another conversation whose last user
    message is most similar by TF-IDF."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [e["last_user"] for e in examples]
    matrix = TfidfVectorizer(min_df=2, stop_words="english", sublinear_tf=True).fit_transform(texts)
    conv = np.array([e["conv"] for e in examples])
    out = {}
    for s in range(0, len(picked), chunk):
        rows = picked[s:s + chunk]
        sims = (matrix[rows] @ matrix.T).toarray()
        for r, i in enumerate(rows):
            sims[r, conv == conv[i]] = -1.0
            out[i] = int(sims[r].argmax())
    return out


def training_lists(examples: list[dict], picked: list[int], seed: int) -> list[tuple[str, list[str]]]:
    """(context, [positive, same_emotion, same_conversation, lexical]) per picked example."""
    rng = random.Random(seed)
    by_emotion: dict[tuple, list[int]] = {}
    by_conv: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        by_emotion.setdefault((e["source"], e["emotion"]), []).append(i)
        by_conv.setdefault(e["conv"], []).append(i)
    lexical = lexical_neighbours(examples, picked)

    def other(pool: list[int], e: dict) -> str:
        for _ in range(20):
            j = pool[rng.randrange(len(pool))]
            if examples[j]["conv"] != e["conv"] and examples[j]["reply"] != e["reply"]:
                return examples[j]["reply"]
        return examples[rng.randrange(len(examples))]["reply"]

    lists = []
    for i in picked:
        e = examples[i]
        same_conv = [examples[j]["reply"] for j in by_conv[e["conv"]] if j != i and examples[j]["reply"] != e["reply"]]
        lists.append((e["context"], [
            e["reply"],
            other(by_emotion[(e["source"], e["emotion"])], e),
            rng.choice(same_conv) if same_conv else other(range(len(examples)), e),
            examples[lexical[i]]["reply"],
        ]))
    return lists


# ---- training ------------------------------------------------------------------------------------------
def start_run(cfg) -> tuple[float, str | None, Path]:
    """Seeds, threads and the output folder of a ranker run: (start time, git commit, output folder)."""
    import torch

    from finetune.train_classifier import git_commit

    t_start, commit = time.time(), git_commit()  # the code that runs, before anything can change it
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    return t_start, commit, out_dir


def planned_steps(step_loss, batches, optimizer, total: int, cfg, eval_minutes: float, max_evals: int) -> int:
    """The steps that fit in ``cfg.max_minutes`` (at most ``total``): a warm-up step, then two timed
    ones, less the time of the dev evaluations."""
    t = time.time()
    for b, batch in enumerate(batches[:3]):
        if b == 1:
            t = time.time()
        step_loss(batch).backward()
    optimizer.zero_grad(set_to_none=True)
    per_step = (time.time() - t) / max(len(batches[1:3]), 1) / 60 * 1.1
    evals = 1 + total // max(cfg.eval_every, 1)
    total = max(10, min(total, int((cfg.max_minutes - min(evals, max_evals) * eval_minutes) / per_step)))
    print(f"about {per_step * 60:.2f} s a step: {total} steps planned in {cfg.max_minutes} minutes")
    return total


def train(cfg: RankerConfig) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from bot.ranker import MAX_CONTEXT_TOKENS, MAX_REPLY_TOKENS, embed, load_encoder, score_pairs
    from bot.resolve import resolve_encoder
    from eval.ranking import embedding_scorer, selection_figures, selection_sets, tfidf_scorer
    from finetune.batching import optimizer_step

    t_start, commit, out_dir = start_run(cfg)
    train_ex = reply_examples(cfg.data_dir, cfg.sources, ("train",))
    picked = list(range(len(train_ex)))
    random.Random(cfg.seed).shuffle(picked)
    if cfg.limit_train:
        picked = picked[:cfg.limit_train]
    lists = training_lists(train_ex, picked, cfg.seed)
    dev_ex = reply_examples(cfg.data_dir, "empatheticdialogues", ("valid",))
    dev_sets = selection_sets(dev_ex, 10, cfg.dev_contexts, seed=cfg.seed)
    print(f"{len(train_ex)} training contexts available, {len(lists)} used; {len(dev_sets)} dev sets")

    encoder = resolve_encoder(cfg.base)
    tokenizer = AutoTokenizer.from_pretrained(encoder.location)
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(load_encoder(cfg.base), LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.1,
        target_modules=["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.01)

    def dev_recall() -> float:
        model.eval()
        fig = selection_figures(dev_sets, lambda c, r: score_pairs(model, tokenizer, c, r), samples=0)
        model.train()
        return fig["recall@1/10"]["value"]

    def step_loss(batch) -> "torch.Tensor":
        ctx = embed(model, tokenizer, [c for c, _ in batch], -MAX_CONTEXT_TOKENS)
        replies = [r for _, reps in batch for r in reps]  # context i's positive is row 4i
        rep = embed(model, tokenizer, replies, MAX_REPLY_TOKENS)
        logits = cfg.scale * ctx @ rep.T
        n_each = len(batch[0][1])
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)) * n_each)

    steps_per_epoch = math.ceil(len(lists) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    if cfg.max_minutes:  # plan the schedule for the steps that fit in the time given
        model.train()
        total = planned_steps(step_loss, [lists[b * cfg.batch_size:(b + 1) * cfg.batch_size] for b in range(3)],
                              optimizer, total, cfg, 0.25, 8)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total), total)
    history, best, best_state = [], -1.0, None
    rng = random.Random(cfg.seed)
    step, losses, t_train = 0, [], time.time()
    history.append({"step": 0, "dev_recall@1/10": dev_recall()})
    print(json.dumps(history[-1]))
    model.train()
    bar = tqdm(total=total, desc="ranker", mininterval=10)
    while step < total:
        order = list(range(len(lists)))
        rng.shuffle(order)
        for s in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            loss = step_loss([lists[i] for i in order[s:s + cfg.batch_size]])
            losses.append(optimizer_step(loss, model, optimizer, scheduler))
            step += 1
            bar.update(1)
            if step % cfg.eval_every == 0 or step == total:
                r = dev_recall()
                row = {"step": step, "train_loss": float(np.mean(losses[-cfg.eval_every:])), "dev_recall@1/10": r,
                       "minutes": (time.time() - t_train) / 60}
                history.append(row)
                print(json.dumps(row), flush=True)
                if r > best:
                    best = r
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items() if "lora" in k}
            if step >= total:
                break
    bar.close()
    train_minutes = (time.time() - t_train) / 60
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    save_ranker(model, tokenizer, out_dir, cfg)

    summary = {"config": asdict(cfg), "commit": commit, "trainable_parameters": trainable, "steps": step,
               "train_contexts": len(lists), "train_minutes": train_minutes, "history": history,
               "negatives": ["in_batch", *NEGATIVE_KINDS], "best_dev_recall@1/10": best}
    splits = [("valid", dev_ex)]
    if cfg.eval_test:
        splits.append(("test", reply_examples(cfg.data_dir, "empatheticdialogues", ("test",))))
    tfidf = tfidf_scorer([e["context"] for e in train_ex] + [e["reply"] for e in train_ex])
    untrained = embedding_scorer(encoder.location)
    for name, ex in splits:
        sets = selection_sets(ex, 100, cfg.test_contexts, seed=cfg.seed + 1)
        summary[f"ed_{name}"] = {
            "ranker": selection_figures(sets, lambda c, r: score_pairs(model, tokenizer, c, r)),
            "tfidf": selection_figures(sets, tfidf),
            "minilm_cosine": selection_figures(sets, untrained),
        }
        print(name, json.dumps({k: {m: round(v[m]["value"], 3) for m in ("recall@1/10", "recall@1/100", "mrr/10") if m in v}
                                for k, v in summary[f"ed_{name}"].items()}))
    summary["wall_seconds"] = time.time() - t_start
    (out_dir / "run_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def save_ranker(peft_model, tokenizer, out_dir: Path, cfg: RankerConfig) -> None:
    """PEFT's adapter files, the tokenizer, and ``ranker.json`` naming the encoder and the scale."""
    peft_model.save_pretrained(out_dir)
    config_file = out_dir / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = cfg.base  # not this machine's path to it
    config_file.write_text(json.dumps(config, indent=1))
    (out_dir / "README.md").unlink(missing_ok=True)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "ranker.json").write_text(json.dumps({
        "form": "lora-adapter", "encoder": cfg.base, "scale": cfg.scale, "score": "scale * cosine",
        "context_turns": 3}, indent=1))


def main(argv=None) -> int:
    cfg = parse_args(argv)
    train(cfg)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
