"""Train the ranker's cross-encoder: a second opinion that reads the conversation and the reply together.

    python -m finetune.train_cross_ranker --data-dir ../shared/data --output runs/cross --max-minutes 40

The bi-encoder ranker (``finetune.train_ranker``) embeds the conversation and the reply apart, so it
judges topic and tone well but cannot see that "Congratulations! Is this your first promotion?"
answers the word "promotion" in "I was passed over for a promotion" and not the person. A
cross-encoder reads both in one pass. It is trained as a *correction* of the bi-encoder: the fit of a
pair is the bi-encoder's score (frozen) plus the cross-encoder's output, whose head and LoRA matrices
start at zero, so training starts exactly where the bi-encoder stands and learns what it gets wrong
(on two CPU cores a cross-encoder trained from scratch starts below the untrained encoder's cosine).

Training contexts are the reply pool's (``bot.retrieval``: EmpatheticDialogues and ESConv train,
replies a bot can say honestly) whose conversation is labelled good news or bad (ESConv: all bad;
ED's surprised / sentimental / nostalgic are left out). Each context's own reply is the positive,
against:

* ``opposite`` (3): replies to the nearest conversations (by the bi-encoder's context embedding) that
  *read* as the opposite of this conversation's valence (the emotion classifier's sentiment groups,
  ``reply_valences``): "Congratulations, you deserve it!" for bad news, "I'm so sorry to hear that"
  for good news. They fit the words, not the situation. Only contexts with at least one train;
* ``random`` (2) and ``same_emotion`` (1): replies from other conversations, which keep the
  correction from forgetting what the bi-encoder already gets right.

Two more kinds exist and are off by default: ``retrieved`` (replies to the nearest conversations
whatever they say) and ``same_conversation``. Read by hand, most of them were as good a reply as the
human one ("I'm so sorry to hear it! Were you able to take anything?" to "I didn't get any of the
classes I wanted"): the bi-encoder's loss on such lists was above chance, and a first run trained
with two of each made every dev figure worse after 250 steps. A second run took the valence of the
conversation a neighbour's reply answered as the reply's own; most such replies are neutral
questions that fit either news, and after 400 steps the dev figures were again worse than at the start.

The loss is the cross-entropy of the positive among its context's candidates. Model selection uses ED
valid: recall@1 of 10 against random replies, minus how often the top choice among the human reply
and the pool's replies to the 9 nearest conversations (what the bot itself retrieves) answered a
conversation of the opposite valence; the test split is read only with
``--eval-test``, once, at the end. The result is written as ``cross/`` inside a copy of the ranker
folder (``--ranker``), which ``bot.ranker.ResponseRanker`` then reads: the pool, indexed by the
bi-encoder alone, stays valid.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Valence of the emotion labels of EmpatheticDialogues; ESConv conversations are all distress.
POSITIVE = frozenset("""proud grateful hopeful joyful content excited confident impressed trusting caring faithful
prepared anticipating""".split())
NEGATIVE = frozenset("""afraid angry annoyed anxious apprehensive ashamed devastated disappointed disgusted
embarrassed furious guilty jealous lonely sad terrified""".split())
NEGATIVE_KINDS = ("opposite", "random", "same_emotion", "retrieved", "same_conversation")


def valence(source: str, emotion: str | None) -> int:
    """+1, -1, or 0 (mixed or unknown: surprised, sentimental, nostalgic)."""
    if source == "esconv":
        return -1
    e = (emotion or "").lower()
    return 1 if e in POSITIVE else -1 if e in NEGATIVE else 0


def reply_valences(texts, classifier, batch_size: int = 64) -> np.ndarray:
    """How each reply reads (the emotion classifier's GoEmotions sentiment groups): +1 clearly positive
    ("Congratulations!", "That's great"), -1 clearly negative (mostly sympathy: "I'm so sorry"), 0
    otherwise (a question, a neutral remark: they fit either kind of news)."""
    out = np.zeros(len(texts), dtype=np.int8)
    for s in range(0, len(texts), batch_size):
        for k, probs in enumerate(classifier.predict(list(texts[s:s + batch_size]))):
            g = classifier.groups(probs, "sentiment")
            pos, neg = g.get("positive", 0.0), g.get("negative", 0.0)
            out[s + k] = 1 if pos >= 0.5 and neg < 0.2 else -1 if neg >= 0.5 and pos < 0.2 else 0
    return out


@dataclass
class CrossConfig:
    data_dir: str | None = None
    output: str = "runs/cross-ranker"
    ranker: str = "empathy-ranker"  # the bi-encoder this cross-encoder corrects
    emotion_classifier: str = "goemotions-minilm"  # reads how each reply sounds (see reply_valences)
    pool: str | None = None  # a built reply pool's folder; None: the one built for --ranker in the cache
    limit_train: int | None = None  # training contexts (a random subset of the pool); None: all
    batch_size: int = 8  # contexts per step; each brings its reply and its negatives
    opposite: int = 3
    random_negatives: int = 2
    same_emotion: int = 1
    retrieved: int = 0  # (measured: mostly replies as good as the human one; see the module docstring)
    same_conversation: int = 0
    lr: float = 2e-4
    head_lr: float = 1e-3  # the one-output head starts at zero
    bf16: bool = True  # bfloat16 autocast while training (CPUs with AVX512-BF16 or AMX, and GPUs); scores stay float32
    warmup: float = 0.05
    lora_r: int = 16
    lora_alpha: int = 32
    lora_layers: str = "2,3,4,5"  # the encoder layers that get LoRA (the lower ones stay frozen: faster)
    max_minutes: float | None = None
    dev_contexts: int = 300
    eval_every: int = 100
    test_contexts: int = 1000
    eval_test: bool = False
    seed: int = 0
    threads: int | None = None


def parse_args(argv=None) -> CrossConfig:
    from finetune.options import parse_config

    return parse_config(CrossConfig, argv, __doc__)


# ---- data ----------------------------------------------------------------------------------------------
def pool_rows(data_dir: str | None, pool_dir: Path, classifier=None,
              cache: Path | None = None) -> tuple[list[dict], np.ndarray]:
    """The pool's rows with their whole context (the pool file keeps only the last message), aligned
    with its context embeddings; each row gets ``source``, ``conv``, ``valence`` (its conversation's
    label) and, with an emotion ``classifier``, ``reply_valence`` (see ``reply_valences``; kept in
    ``cache`` between runs)."""
    from bot.retrieval import pool_rows_from
    from finetune.dialogue_data import data_root

    root = data_root(data_dir)
    if root is None:
        raise FileNotFoundError("give --data-dir (or $EMPATHETIC_BOT_DATA) with empatheticdialogues/ and esconv/")
    rows = pool_rows_from(root)
    with open(pool_dir / "replies.jsonl", encoding="utf-8") as f:
        stored = [json.loads(line) for line in f if line.strip()]
    if len(stored) != len(rows) or any(a["id"] != b["id"] for a, b in zip(rows, stored)):
        raise ValueError(f"the pool in {pool_dir} was built from other data than {root}; rebuild it")
    for r in rows:
        source, rest = r["id"].split(":", 1)
        r["source"], r["conv"] = source, rest.rsplit("#", 1)[0]
        r["valence"] = valence(source, r["emotion"])
    if classifier is not None:
        if cache is not None and cache.is_file() and len(np.load(cache)) == len(rows):
            read = np.load(cache)
        else:
            read = reply_valences([r["reply"] for r in rows], classifier)
            if cache is not None:
                np.save(cache, read)
        for r, v in zip(rows, read):
            r["reply_valence"] = int(v)
    return rows, np.load(pool_dir / "contexts.npy").astype(np.float32)


def training_lists(rows: list[dict], vectors: np.ndarray, picked: list[int], cfg: CrossConfig,
                   chunk: int = 1024) -> list[dict]:
    """For each picked row: ``{"context", "replies": [positive, negatives...], "kinds"}``."""
    from bot.ranker import context_text

    rng = random.Random(cfg.seed)
    conv = np.array([r["conv"] for r in rows])
    read = np.array([r.get("reply_valence", r["valence"]) for r in rows])
    by_conv: dict[str, list[int]] = {}
    by_emotion: dict[tuple, list[int]] = {}
    for i, r in enumerate(rows):
        by_conv.setdefault(r["conv"], []).append(i)
        by_emotion.setdefault((r["source"], r["emotion"]), []).append(i)
    out = []
    for s in range(0, len(picked), chunk):
        block = picked[s:s + chunk]
        sims = vectors[block] @ vectors.T
        for b, i in enumerate(block):
            row = rows[i]
            sims[b, conv == row["conv"]] = -2.0
            width = min(400, len(rows) - 1)
            near = np.argpartition(-sims[b], width)[:width] if width > 0 else np.arange(len(rows))
            near = near[np.argsort(-sims[b][near])]
            seen = {row["reply"].strip().lower()}
            replies, kinds = [row["reply"]], ["positive"]

            def take(j: int, kind: str) -> bool:
                key = rows[j]["reply"].strip().lower()
                if key in seen:
                    return False
                seen.add(key)
                replies.append(rows[j]["reply"])
                kinds.append(kind)
                return True

            top = [int(j) for j in near[:10]]
            rng.shuffle(top)
            got = 0
            for j in top:
                if got >= cfg.retrieved:
                    break
                got += take(j, "retrieved")
            want = -row["valence"]
            got = 0
            for j in near if want else ():
                if got >= cfg.opposite:
                    break
                if read[int(j)] == want:
                    got += take(int(j), "opposite")
            same = [j for j in by_conv[row["conv"]] if j != i]
            rng.shuffle(same)
            for j in same[:cfg.same_conversation]:
                take(j, "same_conversation")
            for kind, count, pool in (("same_emotion", cfg.same_emotion, by_emotion[(row["source"], row["emotion"])]),
                                      ("random", cfg.random_negatives, range(len(rows)))):
                got = 0
                for _ in range(10 * count):
                    if got >= count:
                        break
                    j = pool[rng.randrange(len(pool))]
                    if rows[j]["conv"] != row["conv"]:
                        got += take(j, kind)
            out.append({"context": context_text(row["context"]), "replies": replies, "kinds": kinds})
    return out


def dev_sets(data_dir: str | None, split: str, pool, ranker, classifier, n: int,
             seed: int) -> tuple[list[dict], list[dict]]:
    """ED ``split`` contexts as two kinds of selection set, the human reply first: against 9 random
    replies of the split, and against the replies to the 9 nearest pool conversations (with the
    conversation's valence and how each candidate reads: ``reply_valences``)."""
    import torch

    from bot.ranker import MAX_CONTEXT_TOKENS, embed
    from eval.ranking import selection_sets
    from finetune.train_ranker import reply_examples

    ex = reply_examples(data_dir, "empatheticdialogues", (split,))
    rand = selection_sets(ex, 10, n, seed=seed)
    rng = random.Random(seed + 7)
    picked = rng.sample(range(len(ex)), min(n, len(ex)))
    contexts = [ex[i]["context"] for i in picked]
    with torch.inference_mode():
        vecs = embed(ranker.model, ranker.tokenizer, contexts, -MAX_CONTEXT_TOKENS).float().numpy()
    near = []
    for i, v in zip(picked, vecs):
        e = ex[i]
        cands, seen = [e["reply"]], {e["reply"].strip().lower()}
        for row in pool.nearest(v, 30):
            key = row["reply"].strip().lower()
            if key in seen:
                continue
            seen.add(key)
            cands.append(row["reply"])
            if len(cands) == 10:
                break
        near.append({"context": e["context"], "candidates": cands,
                     "valence": valence("empatheticdialogues", e["emotion"]),
                     "reads": [int(v) for v in reply_valences(cands, classifier)]})
    return rand, near


def pool_figures(sets: list[dict], scorer) -> dict:
    """On sets of the human reply and the nearest pool replies: recall@1/10, and how often the top
    choice reads as the opposite of the conversation's valence (``Congratulations!`` to bad news, "I'm
    so sorry" to good news; contexts of a clear valence only)."""
    from eval.metrics import mean_ci
    from eval.ranking import ranks_of, scored_sets

    scores = scored_sets(sets, scorer)  # the sets hold 10 candidates each
    r = ranks_of(scores)
    wrong = [float(s["reads"][int(np.argmax(sc))] == -s["valence"]) for s, sc in zip(sets, scores) if s["valence"]]
    return {"recall@1/10": mean_ci((r == 1).astype(float)), "opposite_valence_top": mean_ci(np.asarray(wrong)),
            "contexts": len(sets)}


# ---- model ---------------------------------------------------------------------------------------------
def new_cross_model(cfg: CrossConfig, encoder_location: str):
    """The mean-pooling classifier with one output (``fit``), LoRA on the chosen layers, the head at zero."""
    import torch
    from peft import LoraConfig, get_peft_model

    from bot.emotion import new_classifier

    model = new_classifier(encoder_location, ["fit"], "regression")
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
    layers = [int(x) for x in cfg.lora_layers.split(",") if x.strip()]
    return get_peft_model(model, LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.1, modules_to_save=["classifier"],
        target_modules=["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"],
        layers_to_transform=layers, layers_pattern="layer"))


def train(cfg: CrossConfig) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from bot.ranker import ResponseRanker, cross_scores
    from bot.resolve import resolve_encoder
    from bot.retrieval import ReplyPool, pool_folder
    from eval.ranking import selection_figures
    from finetune.batching import optimizer_step
    from finetune.train_ranker import planned_steps, start_run

    t_start, commit, out_dir = start_run(cfg)

    bi = ResponseRanker(cfg.ranker, cross=False)
    pool_dir = Path(cfg.pool) if cfg.pool else pool_folder(bi.resolved)
    pool = ReplyPool(pool_dir)
    from bot.emotion import EmotionClassifier

    reader = EmotionClassifier(cfg.emotion_classifier)
    rows, vectors = pool_rows(cfg.data_dir, pool_dir, reader, out_dir / "reply_valence.npy")
    picked = [i for i, r in enumerate(rows) if r["valence"]]  # good news or bad, as its conversation was labelled
    random.Random(cfg.seed).shuffle(picked)
    if cfg.limit_train:
        picked = picked[:cfg.limit_train]
    t0 = time.time()
    # the contexts with a reply that reads the wrong way among their neighbours' (the others teach nothing new)
    lists = [x for x in training_lists(rows, vectors, picked, cfg) if "opposite" in x["kinds"]]
    kinds = {k: sum(x["kinds"].count(k) for x in lists) for k in ("positive", *NEGATIVE_KINDS)}
    print(f"{len(rows)} pool rows, {len(lists)} training contexts ({time.time() - t0:.0f} s): {kinds}")
    dev_rand, dev_near = dev_sets(cfg.data_dir, "valid", pool, bi, reader, cfg.dev_contexts, cfg.seed)

    encoder = resolve_encoder(json.loads((Path(bi.resolved.location) / "ranker.json").read_text())["encoder"])
    tokenizer = bi.tokenizer
    model = new_cross_model(cfg, encoder.location)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    head = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" in n]
    body = [p for n, p in model.named_parameters() if p.requires_grad and "classifier" not in n]
    optimizer = torch.optim.AdamW([{"params": body, "lr": cfg.lr}, {"params": head, "lr": cfg.head_lr}],
                                  weight_decay=0.01)

    def combined(contexts, replies):
        with torch.inference_mode():
            c = cross_scores(model, tokenizer, contexts, replies)
        return list(np.asarray(bi.score_pairs(contexts, replies)) + np.asarray(c))

    def dev() -> dict:
        model.eval()
        out = {"dev_random_recall@1/10": selection_figures(dev_rand, combined, samples=0)["recall@1/10"]["value"],
               **{f"dev_pool_{k}": v["value"] for k, v in pool_figures(dev_near, combined).items() if k != "contexts"}}
        model.train()
        # kept: the checkpoint that best keeps the right reply first and the wrong valence off the top
        out["dev_objective"] = out["dev_random_recall@1/10"] - out["dev_pool_opposite_valence_top"]
        return out

    def step_loss(batch) -> "torch.Tensor":
        contexts = [b["context"] for b in batch for _ in b["replies"]]
        replies = [r for b in batch for r in b["replies"]]
        with torch.inference_mode():
            base = torch.tensor(bi.score_pairs(contexts, replies))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = base + cross_scores(model, tokenizer, contexts, replies, grad=True)
        loss, at = 0.0, 0
        for b in batch:  # each context's own reply (first) among its candidates
            k = len(b["replies"])
            loss = loss + torch.nn.functional.cross_entropy(logits[at:at + k][None], torch.zeros(1, dtype=torch.long))
            at += k
        return loss / len(batch)

    total = math.ceil(len(lists) / cfg.batch_size)
    if cfg.max_minutes:  # plan the schedule for the steps that fit
        model.train()
        total = planned_steps(step_loss, [lists[b * cfg.batch_size:(b + 1) * cfg.batch_size] for b in range(3)],
                              optimizer, total, cfg, 0.4, 12)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total), total)
    history, best, best_state = [{"step": 0, **dev()}], -1.0, None
    print(json.dumps(history[-1]), flush=True)
    model.train()
    step, losses, t_train = 0, [], time.time()
    bar = tqdm(total=total, desc="cross-ranker", mininterval=30)
    while step < total:
        for s in range(0, len(lists) - cfg.batch_size + 1, cfg.batch_size):
            losses.append(optimizer_step(step_loss(lists[s:s + cfg.batch_size]), model, optimizer, scheduler))
            step += 1
            bar.update(1)
            if step % cfg.eval_every == 0 or step == total:
                row = {"step": step, "train_loss": float(np.mean(losses[-cfg.eval_every:])), **dev(),
                       "minutes": (time.time() - t_train) / 60}
                history.append(row)
                print(json.dumps(row), flush=True)
                if row["dev_objective"] > best:
                    best = row["dev_objective"]
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()
                                  if "lora" in k or "modules_to_save" in k}
            if step >= total:
                break
    bar.close()
    train_minutes = (time.time() - t_train) / 60
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    model.eval()
    save_cross(model, out_dir, cfg, Path(bi.resolved.location), json.loads(
        (Path(bi.resolved.location) / "ranker.json").read_text())["encoder"])

    summary = {"config": asdict(cfg), "commit": commit, "trainable_parameters": trainable, "steps": step,
               "train_contexts": min(len(lists), step * cfg.batch_size), "negatives": kinds,
               "train_minutes": train_minutes, "history": history, "best_dev_objective": best}

    def bi_only(contexts, replies):
        return bi.score_pairs(contexts, replies)

    splits = [("valid", dev_rand, dev_near)]
    if cfg.eval_test:
        splits.append(("test", *dev_sets(cfg.data_dir, "test", pool, bi, reader, cfg.test_contexts, cfg.seed + 1)))
    for name, rand, near in splits:
        summary[f"ed_{name}"] = {
            "bi_encoder": {"random": selection_figures(rand, bi_only), "pool": pool_figures(near, bi_only)},
            "bi_plus_cross": {"random": selection_figures(rand, combined), "pool": pool_figures(near, combined)}}
        print(name, json.dumps({k: {s: {m: round(v["value"], 3) for m, v in f.items() if isinstance(v, dict)}
                                    for s, f in x.items()} for k, x in summary[f"ed_{name}"].items()}), flush=True)
    summary["wall_seconds"] = time.time() - t_start
    (out_dir / "cross" / "run_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def save_cross(peft_model, out_dir: Path, cfg: CrossConfig, ranker_dir: Path, encoder_spec: str) -> None:
    """A copy of the ranker folder with the cross-encoder in ``cross/`` (PEFT files, the tokenizer,
    ``classifier.json``)."""
    for f in ranker_dir.iterdir():
        if f.is_file() and f.name != "README.md":
            shutil.copyfile(f, out_dir / f.name)
    cross = out_dir / "cross"
    cross.mkdir(exist_ok=True)
    peft_model.save_pretrained(cross)
    config_file = cross / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = encoder_spec
    config_file.write_text(json.dumps(config, indent=1))
    (cross / "README.md").unlink(missing_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json"):  # the bi-encoder's: the same encoder
        shutil.copyfile(ranker_dir / name, cross / name)
    (cross / "classifier.json").write_text(json.dumps({
        "form": "lora-adapter", "encoder": encoder_spec, "architecture": "BertMeanPoolForSequenceClassification",
        "problem_type": "regression", "labels": ["fit"],
        "score": "added to the bi-encoder's fit (it was trained as its correction)"}, indent=1))


def main(argv=None) -> int:
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
