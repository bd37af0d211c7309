"""Train the learned crisis detector that joins the rules in ``bot.crisis``.

    python -m finetune.train_crisis --data-dir ../shared/data --output runs/crisis
    python -m finetune.train_crisis --data-dir ../shared/data --output runs/crisis-ens --members runs/a,runs/b

A multi-label classifier over all-MiniLM-L6-v2 (LoRA + a mean-pooling head, saved like the emotion
classifier): one sigmoid per crisis category (``self_harm``, ``harm_to_others``, ``abuse``,
``medical_emergency``) and one for ``imminent`` (a plan, means or a time: read with the category).
``--members`` joins detectors trained apart (another seed) into an ensemble (the mean of their
probabilities) and chooses its thresholds on dev.

Training data:

* the project's own phrasings under ``data/safety/`` (see ``own_rows``): every category and hard
  look-alikes (hyperbole, lyrics, films, a nurse's shift, helping a friend, past crises), contrast sets,
  a second round of indirect, euphemistic, chat-style and other-language messages beside safe twins,
  everyday look-alikes, and short mid-conversation turns (plans, times, doctors, family) that sound like
  danger without context; split 80 / 20 into train and dev by a hash of the id; repeated
  ``--own-repeat`` times in training, and a share (``--in-context``) also read after one to three
  everyday turns, as the detector reads a message with the turns before it;
* the crisis research sets under ``crisis/`` (see their PROVENANCE.md; no license stated, research
  data): Twitter posts of at most 280 characters (longer ones are almost all positive: a length
  confound) split 80 / 10 / 10 by hash, and SDCNL (r/SuicideWatch against r/depression) train;
  their rows carry no imminence label, so that output is not trained on them;
* negatives: sad, angry, afraid people who are not in danger: GoEmotions train comments, the user turns
  of EmpatheticDialogues train and ESConv train, sampled, and ``--window-negatives`` of those turns read
  with the turns before them; any that the rules flag are left out (they may be real disclosures).

Two thresholds per category are chosen on dev (see ``choose_thresholds``): a *check-in* threshold,
recall first (``--recall`` 0.95 for self-harm, ``--recall-other`` for the rest) within caps on everyday
messages (``--check-in-cap``) and on the user turns of everyday conversations read as in a session
(``--conversation-cap`` for ED / ESConv valid, ``--own-conversation-cap`` for the project's own dev
conversations), where the bot asks the person directly; and an *alarm* threshold with at most
``--alarm-cap`` of the project's own dev look-alikes over it, where it answers as to a crisis.
``--retune true`` chooses them again for a saved detector without training. The held-out sets
``data/safety/crisis_heldout.jsonl`` and ``crisis_heldout2.jsonl``, the test half of
``crisis_conversations.jsonl`` (written separately, never used for tuning) and the research sets' test
splits are scored once at the end with ``--eval-test`` by ``eval.crisis_suite``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

LABELS = ("self_harm", "harm_to_others", "abuse", "medical_emergency", "imminent")
CATEGORIES = LABELS[:4]
PROJECT_DATA = Path(__file__).resolve().parent.parent / "data" / "safety"


@dataclass
class CrisisConfig:
    data_dir: str | None = None
    output: str = "runs/crisis"
    base: str = "all-minilm-l6-v2"
    epochs: int = 3
    lr: float = 5e-4
    batch_size: int = 32
    max_length: int = 96
    lora_r: int = 16
    lora_alpha: int = 32
    own_repeat: int = 4
    negatives: int = 4000  # sampled from GoEmotions, ED and ESConv together
    twitter_negatives: int = 2500
    window_negatives: int = 3000  # ED / ESConv train user turns read with the turns before them, as in a session
    in_context: float = 0.5  # share of the own rows also trained after 1-3 everyday turns, as read in a session
    research_limit: int | None = None  # cap on research-set rows (quick runs and tests)
    recall: float = 0.95
    recall_other: float = 0.90
    check_in_cap: float = 0.03  # share of dev everyday messages the check-in may reach (self-harm; half for others)
    conversation_cap: float = 0.01  # share of dev conversation turns (read as in a session) any check-in may reach
    own_conversation_cap: float = 0.03  # the same for the project's own everyday dev conversations (hard look-alikes)
    outside_cap: float = 0.03  # the same for the ordinary dev conversations written apart from the project
    min_check_in: float = 0.1  # no check-in below this probability, whatever recall asks
    alarm_cap: float = 0.05  # share of the project's dev look-alikes the alarm may reach
    retune: bool = False  # choose the thresholds of the detector in --output again, without training
    members: str | None = None  # comma-separated detector folders: join them into an ensemble in --output
    seed: int = 0
    threads: int | None = None
    eval_test: bool = False


def parse_args(argv=None) -> CrisisConfig:
    from finetune.options import parse_config

    return parse_config(CrisisConfig, argv, __doc__)


def _bucket(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def row(text: str, category: str | None, imminent: bool | None, source: str) -> dict:
    """One example: targets for the five outputs and a mask (imminence unknown -> not trained)."""
    target = [float(category == c) for c in CATEGORIES] + [float(bool(imminent))]
    mask = [1.0] * 4 + [0.0 if imminent is None else 1.0]
    return {"text": text, "target": target, "mask": mask, "source": source, "category": category or "none"}


def read_project_set(path: Path) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                cat = None if d["category"] in ("none", None) else d["category"]
                r = row(d["text"], cat, (d.get("degree") == "imminent") if cat else False, "own")
                r.update(id=d["id"], kind=d.get("kind", ""), degree=d.get("degree", "none"))
                out.append(r)
    return out


OWN_FILES = ("crisis_train.jsonl", "crisis_train_contrast.jsonl", "crisis_train_more.jsonl",
             "crisis_lookalikes_everyday.jsonl", "crisis_train_turns.jsonl", "crisis_train_round3.jsonl",
             "crisis_train_round4.jsonl", "crisis_train_round5.jsonl", "crisis_train_round6.jsonl")


def own_rows() -> list[dict]:
    """The project's own phrasings: ``crisis_train.jsonl``, the contrast sets of
    ``crisis_train_contrast.jsonl`` (look-alikes beside the crises they resemble), the second round of
    ``crisis_train_more.jsonl`` (indirect, euphemism, chat style and other languages, each kind beside
    safe twins), the everyday look-alikes of ``crisis_lookalikes_everyday.jsonl`` and the
    mid-conversation turns of ``crisis_train_turns.jsonl`` (short replies about plans, times, doctors and
    family that sound like danger without context, beside short disclosures), and the third round of
    ``crisis_train_round3.jsonl`` (medical emergencies told plainly and understated, indirect and
    euphemistic self-harm, children's disclosures, beside routine medical talk and everyday idioms), and the
    fourth round of ``crisis_train_round4.jsonl`` (plans told only through a method, place or time,
    goodbye behaviour, euphemisms, overdoses already taken, harm to others with a means, other languages,
    indirect abuse, beside ordinary planning, routine medication questions and hyperbole), the fifth round of
    ``crisis_train_round5.jsonl`` (ordinary messages and crises in the same voices), and the sixth of
    ``crisis_train_round6.jsonl`` (plans, arrangements and means told without a danger word, eating
    disorders, harm to others through tampering, poison, fire or a carer's breaking point, children's and
    elders' disclosures, coercive control, medical emergencies told plainly, beside look-alikes built from
    the same days, objects and words)."""
    return [r for name in OWN_FILES if (PROJECT_DATA / name).is_file() for r in read_project_set(PROJECT_DATA / name)]


def read_twitter(root: Path) -> dict[str, list[dict]]:
    """Twitter rows of at most 280 characters, split 80/10/10 by a hash of the text."""
    splits: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    seen = set()
    with open(root / "crisis" / "twitter_suicidal" / "twitter-suicidal_data.csv", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            text = (r.get("tweet") or "").strip()
            if not text or len(text) > 280 or text in seen:
                continue
            seen.add(text)
            b = _bucket("tw:" + text)
            split = "train" if b < 0.8 else "dev" if b < 0.9 else "test"
            splits[split].append(row(text, "self_harm" if r.get("intention") == "1" else None, None, "twitter"))
    return splits


def read_sdcnl(root: Path, split: str) -> list[dict]:
    name = "training-set.csv" if split == "train" else "testing-set.csv"
    out = []
    with open(root / "crisis" / "sdcnl" / name, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            text = f"{(r.get('title') or '').strip()}. {(r.get('selftext') or '').strip()}".strip(". ")
            if text:
                out.append(row(text, "self_harm" if r.get("is_suicide") == "1" else None, None, "sdcnl"))
    return out


def everyday_negatives(root: Path, n: int, seed: int, split: str = "train") -> list[dict]:
    """Messages from people who are upset but (as far as the rules can tell) not in danger: GoEmotions
    comments and the user turns of ED and ESConv, from ``split`` ("train", or "valid" for dev)."""
    from bot.crisis import detect_crisis
    from finetune.dialogue_data import read_empathetic_dialogues, read_esconv

    pools: dict[str, list[str]] = {"goemotions": [], "empatheticdialogues": [], "esconv": []}
    ge = root / "goemotions" / "original" / ("train.tsv" if split == "train" else "dev.tsv")
    if ge.is_file():
        with open(ge, encoding="utf-8") as f:
            pools["goemotions"] = [ln.split("\t")[0] for ln in f if ln.strip()]
    for name, reader in (("empatheticdialogues", read_empathetic_dialogues), ("esconv", read_esconv)):
        if (root / name).is_dir():
            for conv in reader(root / name):
                if conv.split == split:
                    pools[name] += [m["content"] for m in conv.messages if m["role"] == "user"]
    rng = random.Random(seed)
    share = {"goemotions": 0.4, "empatheticdialogues": 0.35, "esconv": 0.25}
    out = []
    for name, texts in pools.items():
        rng.shuffle(texts)
        kept = [t for t in texts[: int(n * share[name] * 1.3)] if not detect_crisis(t)][: int(n * share[name])]
        out += [row(t, None, False, name) for t in kept]
    return out


def session_windows(conversations: list[list[str]]) -> list[tuple[str, str | None]]:
    """Each user turn as the detector reads it in a session: (the turn alone, the turn joined with up to
    three user turns before it, or None for a first turn)."""
    from bot.crisis_model import joined_turns

    out = []
    for turns in conversations:
        for i, text in enumerate(turns):
            out.append((text, joined_turns(text, turns[:i]) if i else None))
    return out


def window_negatives(root: Path, n: int, seed: int) -> list[dict]:
    """``n`` user turns of ED and ESConv train conversations (the rules flag none of their turns), half of
    them joined with the turns before them as the detector reads them in a session."""
    from eval.crisis_suite import everyday_conversations

    windows = session_windows(everyday_conversations(root, "train", seed=seed))
    rng = random.Random(seed)
    rng.shuffle(windows)
    out = []
    for i, (alone, joined) in enumerate(windows[:n]):
        text = joined if joined is not None and i % 2 == 0 else alone
        out.append(row(text, None, False, "session_window"))
    return out


def in_context(rows: list[dict], root: Path, share: float, seed: int) -> list[dict]:
    """Copies of a ``share`` of ``rows``, each read after one to three user turns of an everyday ED / ESConv
    train conversation, as the detector reads a message with the turns before it: a disclosure keeps
    its label inside a conversation, and a look-alike stays safe there."""
    from bot.crisis_model import joined_turns
    from eval.crisis_suite import everyday_conversations

    if share <= 0 or not rows:
        return []
    conversations = [c for c in everyday_conversations(root, "train", seed=seed) if len(c) >= 2]
    rng = random.Random(seed + 7)
    out = []
    for r in rows:
        if conversations and rng.random() < share:
            turns = rng.choice(conversations)
            k = rng.randint(1, min(3, len(turns)))
            start = rng.randint(0, len(turns) - k)
            out.append({**r, "text": joined_turns(r["text"], turns[start:start + k]), "source": "own_in_context"})
    return out


GRID = np.round(np.arange(0.02, 0.99, 0.01), 2)


def recall_first_threshold(y: np.ndarray, p: np.ndarray, recall: float) -> float:
    """The highest threshold whose recall on ``y`` is at least ``recall`` (0.5 without positives)."""
    if y.sum() == 0:
        return 0.5
    ok = [t for t in GRID if (p[y == 1] >= t).mean() >= recall]
    return float(max(ok)) if ok else float(GRID[0])


def capped_threshold(y: np.ndarray, p: np.ndarray, recall: float, negatives: np.ndarray, cap: float,
                     more: tuple[tuple[np.ndarray, float], ...] = ()) -> float:
    """Recall first, within false-alarm caps: the recall-first threshold, raised until at most ``cap`` of
    the dev ``negatives`` (probabilities of messages that are not crises) reach it, and at most each
    cap of ``more`` (negatives, cap) pairs."""
    t = recall_first_threshold(y, p, recall)
    for candidate in GRID:
        if candidate >= t and all(len(neg) == 0 or (neg >= candidate).mean() <= c
                                  for neg, c in ((negatives, cap), *more)):
            return float(candidate)
    return float(GRID[-1])


def dev_split(root: Path, seed: int) -> dict[str, list[dict]]:
    """The dev rows: the project's own (20% by id hash), Twitter dev, and everyday messages from the
    datasets' own dev / valid splits (negatives)."""
    from eval.crisis_suite import everyday_conversations, outside_conversations, own_conversations

    own = own_rows()
    return {"own": [r for r in own if _bucket(r["id"]) >= 0.8], "twitter": read_twitter(root)["dev"],
            "everyday": everyday_negatives(root, 1500, seed, split="valid"),
            "sessions": session_windows(everyday_conversations(root, "valid", limit=400, seed=seed)),
            "own_sessions": session_windows([c["user_turns"] for c in own_conversations("dev")
                                             if c["kind"] == "everyday"]),
            "outside_sessions": session_windows([c["turns"] for c in outside_conversations("dev")])}


def turn_probabilities(predict, windows: list[tuple[str, str | None]]) -> tuple[np.ndarray, np.ndarray]:
    """Per turn of ``session_windows``: its reading alone (what a check-in needs), and the larger of its
    two readings, alone and with the turns before it (either one can reach the alarm threshold, see
    ``bot.crisis_model``)."""
    if not windows:
        return np.zeros((0, len(LABELS))), np.zeros((0, len(LABELS)))
    alone = np.asarray(predict([a for a, _ in windows]))
    either = alone.copy()
    joined_at = [i for i, (_, j) in enumerate(windows) if j is not None]
    if joined_at:
        either[joined_at] = np.maximum(alone[joined_at], np.asarray(predict([windows[i][1] for i in joined_at])))
    return alone, either


# The dev conversations read as in a session, each kept under its own cap: (key of ``dev_split``, figure
# name, ``CrisisConfig`` field of the cap)
SESSION_SETS = (("sessions", "dev_conversation_turns_flagged", "conversation_cap"),
                ("own_sessions", "dev_own_conversation_turns_flagged", "own_conversation_cap"),
                ("outside_sessions", "dev_outside_conversation_turns_flagged", "outside_cap"))


def choose_thresholds(predict, dev: dict[str, list[dict]], cfg: "CrisisConfig") -> tuple[dict, dict]:
    """Two thresholds per category, both on dev.

    * check-in (the bot asks directly): recall first (``cfg.recall`` for self-harm, ``cfg.recall_other``
      else) on the dev crisis rows, raised only as far as needed to keep everyday messages (GoEmotions
      dev, ED / ESConv valid, Twitter dev negatives) under ``cfg.check_in_cap`` (half of it for the
      categories other than self-harm);
      and to keep the user turns of everyday dev conversations, each read as in a session (alone and
      with the turns before it), under ``cfg.conversation_cap`` for all categories together (half of
      it for self-harm, a sixth for each other category), and the user turns of the project's own
      everyday dev conversations (``data/safety/crisis_conversations.jsonl``, full of words that sound
      like danger) under ``cfg.own_conversation_cap`` the same way, and the user turns of the ordinary
      dev conversations written apart from the project (``data/safety/everyday_conversations.jsonl``)
      under ``cfg.outside_cap`` the same way; never below ``cfg.min_check_in``;
    * alarm (treated as a crisis): at least the check-in threshold, raised until at most
      ``cfg.alarm_cap`` of the project's own dev look-alikes, 1% of the everyday messages and a tenth
      of each conversation cap of the conversation turns reach it.

    ``imminent``: recall first among the dev crisis rows. Returns the thresholds and the dev figures."""
    rows = dev["own"] + dev["twitter"] + dev["everyday"]
    probs = np.asarray(predict([r["text"] for r in rows]))
    # per set of conversations: its figure's name, its cap, and each turn's readings (alone, either)
    session_sets = [(name, getattr(cfg, cap), *turn_probabilities(predict, dev.get(key) or []))
                    for key, name, cap in SESSION_SETS]
    own_n = len(dev["own"])
    is_none = np.array([r["category"] == "none" for r in rows])
    lookalike = np.array([i < own_n and rows[i]["category"] == "none" for i in range(len(rows))])
    everyday = is_none & ~lookalike
    thresholds, check_in, figures = {}, {}, {}
    for j, c in enumerate(CATEGORIES):
        # Twitter's positives are all self-harm; for the other categories only the project's own rows count
        use = np.array([i < own_n or c == "self_harm" for i in range(len(rows))])
        y = np.array([r["category"] == c for r in rows]).astype(int)
        cap = cfg.check_in_cap if c == "self_harm" else cfg.check_in_cap / 2
        share = 0.5 if c == "self_harm" else 1 / 6
        check_in[c] = max(cfg.min_check_in, capped_threshold(
            y[use], probs[use, j], cfg.recall if c == "self_harm" else cfg.recall_other, probs[everyday, j], cap,
            tuple((alone[:, j], set_cap * share) for _, set_cap, alone, _ in session_sets)))
        alarm = next((float(t) for t in GRID if t >= check_in[c] and (probs[lookalike, j] >= t).mean() <= cfg.alarm_cap
                      and (probs[everyday, j] >= t).mean() <= 0.01
                      and all(not len(either) or (either[:, j] >= t).mean() <= set_cap / 10
                              for _, set_cap, _, either in session_sets)),
                     float(GRID[-1]))
        thresholds[c] = alarm
        figures[c] = {}
        for level, t in (("check_in", check_in[c]), ("alarm", alarm)):
            hit = probs[:, j] >= t

            def turns(alone, either):  # a turn is asked about from its own reading, or the turns together at the alarm
                if not len(alone):
                    return None
                flagged = alone[:, j] >= t
                return float((flagged | (either[:, j] >= alarm)).mean() if level == "check_in" else flagged.mean())

            figures[c][level] = {"dev_recall": float(hit[use & (y == 1)].mean()) if (use & (y == 1)).any() else None,
                                 "dev_false_alarms_lookalikes": float(hit[lookalike].mean()),
                                 "dev_false_alarms_everyday": float(hit[everyday].mean()),
                                 **{name: turns(alone, either) for name, _, alone, either in session_sets}}
    crisis = [i for i in range(own_n) if rows[i]["category"] != "none"]
    y_imm = np.array([rows[i].get("degree") == "imminent" for i in crisis]).astype(int)
    thresholds["imminent"] = recall_first_threshold(y_imm, probs[crisis, 4], cfg.recall_other)
    thresholds["check_in"] = check_in
    alarms = np.array([thresholds[c] for c in CATEGORIES])
    for level, limits in (("check_in", check_in), ("alarm", thresholds)):
        cut = np.array([limits[c] for c in CATEGORIES])
        flagged = (probs[:, :4] >= cut).any(axis=1)

        def turns(alone, either):
            if not len(alone):
                return None
            hit = (alone[:, :4] >= cut).any(axis=1)
            return float((hit | (either[:, :4] >= alarms).any(axis=1)).mean() if level == "check_in" else hit.mean())

        figures[f"any:{level}"] = {"dev_recall_own": float(flagged[:own_n][~is_none[:own_n]].mean()),
                                   "dev_false_alarms_lookalikes": float(flagged[lookalike].mean()),
                                   "dev_false_alarms_everyday": float(flagged[everyday].mean()),
                                   **{name: turns(alone, either) for name, _, alone, either in session_sets}}
    return thresholds, figures


def train(cfg: CrisisConfig) -> dict:
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from bot.emotion import new_classifier
    from bot.resolve import resolve_encoder
    from finetune.batching import length_grouped_batches, optimizer_step
    from finetune.dialogue_data import data_root
    from finetune.train_classifier import collate, git_commit, predict, save_adapter_form

    t_start, commit = time.time(), git_commit()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    root = data_root(cfg.data_dir)
    if root is None:
        raise FileNotFoundError("give --data-dir (or $EMPATHETIC_BOT_DATA) with crisis/, goemotions/, "
                                "empatheticdialogues/ and esconv/")
    own = own_rows()
    own_train = [r for r in own if _bucket(r["id"]) < 0.8]
    own_dev = [r for r in own if _bucket(r["id"]) >= 0.8]
    twitter = read_twitter(root)
    rng = random.Random(cfg.seed)
    tw_train = [r for r in twitter["train"] if r["category"] != "none"]
    tw_neg = [r for r in twitter["train"] if r["category"] == "none"]
    rng.shuffle(tw_neg)
    research = tw_train + tw_neg[:cfg.twitter_negatives] + read_sdcnl(root, "train")
    if cfg.research_limit is not None:
        rng.shuffle(research)
        research = research[:cfg.research_limit]
    train_rows = (own_train * cfg.own_repeat + in_context(own_train, root, cfg.in_context, cfg.seed) + research
                  + everyday_negatives(root, cfg.negatives, cfg.seed)
                  + (window_negatives(root, cfg.window_negatives, cfg.seed) if cfg.window_negatives else []))
    counts = {}
    for r in train_rows:
        counts[f"{r['source']}:{r['category']}"] = counts.get(f"{r['source']}:{r['category']}", 0) + 1
    print(json.dumps({"train_rows": len(train_rows), "by_source": counts, "own_dev": len(own_dev),
                      "twitter_dev": len(twitter["dev"])}))

    encoder = resolve_encoder(cfg.base)
    tokenizer = AutoTokenizer.from_pretrained(encoder.location)
    tokenizer.truncation_side = "left"  # a long conversation keeps its newest words (see bot.crisis_model)
    pad_id = tokenizer.pad_token_id or 0

    def encode(rows):
        return tokenizer([r["text"] for r in rows], truncation=True, max_length=cfg.max_length)["input_ids"]

    train_ids = encode(train_rows)
    targets = torch.tensor([r["target"] for r in train_rows])
    masks = torch.tensor([r["mask"] for r in train_rows])
    model = new_classifier(encoder.location, LABELS)
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(model, LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.1, modules_to_save=["classifier"],
        target_modules=["query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.01)
    batches_per_epoch = len(length_grouped_batches([len(x) for x in train_ids], cfg.batch_size, random.Random(0)))
    total = batches_per_epoch * cfg.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * total), total)
    device = torch.device("cpu")
    history = []
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        losses, t0 = [], time.time()
        for batch in tqdm(length_grouped_batches([len(x) for x in train_ids], cfg.batch_size, rng),
                          desc=f"epoch {epoch}/{cfg.epochs}", mininterval=10):
            input_ids, mask = collate([train_ids[i] for i in batch], pad_id, device)
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            loss_each = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[batch], reduction="none")
            loss = (loss_each * masks[batch]).sum() / masks[batch].sum()
            losses.append(optimizer_step(loss, model, optimizer, scheduler))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "seconds": time.time() - t0})
        print(json.dumps(history[-1]), flush=True)
    model.eval()

    # ---- thresholds on dev -------------------------------------------------------------------------
    def predict_texts(texts):
        return predict(model, tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"], pad_id, device)

    thresholds, dev_figures = choose_thresholds(predict_texts, dev_split(root, cfg.seed + 1), cfg)

    out_dir = Path(cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_adapter_form(model, out_dir, cfg.base, list(LABELS))
    settings = json.loads((out_dir / "classifier.json").read_text())
    (out_dir / "classifier.json").write_text(json.dumps({**settings, "truncation_side": "left"}, indent=1))
    tokenizer.save_pretrained(out_dir)
    (out_dir / "thresholds.json").write_text(json.dumps(thresholds, indent=1))
    summary = {"config": asdict(cfg), "commit": commit, "history": history, "thresholds": thresholds,
               "dev": dev_figures,
               "train_rows": len(train_rows), "by_source": counts, "train_minutes": (time.time() - t_start) / 60}
    (out_dir / "run_summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({"thresholds": thresholds, "dev": dev_figures}))
    return summary


def retune(cfg: CrisisConfig) -> dict:
    """Choose the thresholds of the detector saved in ``cfg.output`` again (on dev), without training."""
    from bot.crisis_model import CrisisClassifier
    from finetune.dialogue_data import data_root

    root = data_root(cfg.data_dir)
    clf = CrisisClassifier(cfg.output, cache_dir="")  # the thresholds of this very folder: no cached copy

    def predict_texts(texts):
        out = []
        for s in range(0, len(texts), 64):
            out += [[p[label] for label in LABELS] for p in clf.predict(texts[s:s + 64])]
        return out

    thresholds, dev_figures = choose_thresholds(predict_texts, dev_split(root, cfg.seed + 1), cfg)
    out_dir = Path(cfg.output)
    (out_dir / "thresholds.json").write_text(json.dumps(thresholds, indent=1))
    path = out_dir / "run_summary.json"
    summary = json.loads(path.read_text())
    summary.setdefault("earlier_thresholds", []).append({"thresholds": summary.get("thresholds"), "dev": summary.get("dev"),
                                                         "config": summary.get("config")})
    summary.update(thresholds=thresholds, dev=dev_figures, config={**summary["config"], **asdict(cfg)})
    summary.pop("report", None)
    path.write_text(json.dumps(summary, indent=1))
    print(json.dumps({"thresholds": thresholds, "dev": dev_figures}))
    return summary


MEMBER_FILES = ("classifier.json", "adapter_config.json", "adapter_model.safetensors", "run_summary.json")


def join_members(cfg: CrisisConfig) -> dict:
    """An ensemble of trained detectors in ``cfg.output`` (the mean of the members' probabilities, as
    for the emotion classifier), its thresholds chosen on dev like a single detector's."""
    import shutil

    sources = [Path(m) for m in (cfg.members or "").split(",") if m.strip()]
    if len(sources) < 2:
        raise ValueError("--members needs at least two detector folders, separated by commas")
    for src in sources:
        meta = json.loads((src / "classifier.json").read_text()) if (src / "classifier.json").is_file() else {}
        if not meta or meta.get("form") == "ensemble" or not (src / "tokenizer.json").is_file():
            raise ValueError(f"{src} is not a single detector written by finetune.train_crisis")
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    names = []
    for i, src in enumerate(sources):
        name = f"member{i}-{src.name}"
        (out / name).mkdir(exist_ok=True)
        for f in MEMBER_FILES:
            if (src / f).is_file():
                shutil.copyfile(src / f, out / name / f)
        names.append(name)
    first = json.loads((sources[0] / "classifier.json").read_text())
    (out / "classifier.json").write_text(json.dumps({
        "form": "ensemble", "architecture": "BertMeanPoolEnsembleForSequenceClassification",
        "combine": "mean of the members' probabilities", "members": names, "labels": list(LABELS),
        "truncation_side": first.get("truncation_side", "right")}, indent=1))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(sources[0] / f, out / f)
    runs = [json.loads((src / "run_summary.json").read_text()) for src in sources]
    (out / "thresholds.json").write_text(json.dumps(runs[0]["thresholds"]))  # chosen again below
    (out / "run_summary.json").write_text(json.dumps({
        "form": "ensemble", "config": asdict(cfg), "thresholds": None, "dev": None,
        "members": {n: {k: r.get(k) for k in ("config", "commit", "train_minutes", "train_rows", "by_source", "history")}
                    for n, r in zip(names, runs)}}, indent=1))
    return retune(cfg)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    join_members(cfg) if cfg.members else retune(cfg) if cfg.retune else train(cfg)
    if cfg.eval_test:  # once, at the end: the held-out set and the research sets' test splits
        from eval.crisis_suite import run

        report = run(cfg.output, cfg.data_dir, Path(cfg.output) / "report")
        path = Path(cfg.output) / "run_summary.json"
        summary = json.loads(path.read_text())
        summary["report"] = report
        path.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
