"""Turn empathetic dialogues into supervised examples for the reply adapter.

    python -m finetune.dialogue_data --data-dir ../shared/data --output runs/sft          # ED + ESConv
    python -m finetune.dialogue_data --jsonl my_transcripts.jsonl --output runs/sft-own  # your own conversations

Every listener / supporter turn that follows a user turn becomes one example: the conversation so
far, the emotion state that the project's classifier and tracker compute over the user's turns
(exactly as the bot does while serving), and the reply. Each example is rendered with the same
prompt templates the bot uses, so training and serving see the same prompts.

Sources:
* EmpatheticDialogues (``empatheticdialogues/``): conversations from ``by_emotion_annotated/*.csv``
  (the file name is the gold emotion); the official valid and test conversations are those listed in
  ``splits_valid_test/fixed_{valid,test}.csv``, every other conversation is train.
* ESConv (``esconv/{train,valid}.txt``): seeker = user, supporter = assistant; consecutive turns of
  one speaker are joined into one message.
* Your own JSONL: one conversation per line, ``{"id": "...", "split": "train", "messages":
  [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}, ...]}``; ``id`` and
  ``split`` (train / valid / test) are optional (default: train).

Cleaning: text is whitespace-normalised (``_comma_`` becomes ","), empty turns and conversations
without a reply are dropped, and exact duplicate (history, reply) examples are kept once. The
counts of each step are printed and saved in ``counts.json``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

DATA_ENV = "EMPATHETIC_BOT_DATA"


def data_root(data_dir: str | None) -> Path | None:
    """The datasets folder: ``data_dir`` if given, else ``$EMPATHETIC_BOT_DATA``, else None."""
    root = data_dir or os.environ.get(DATA_ENV)
    return Path(root).expanduser() if root else None


@dataclass
class Conversation:
    id: str
    source: str
    split: str
    messages: list[dict]  # alternating {"role": "user" | "assistant", "content"}
    emotion: str | None = None  # the dataset's own label, kept for evaluation
    situation: str | None = None


@dataclass
class Counts:
    conversations: dict = field(default_factory=dict)
    dropped_conversations: dict = field(default_factory=dict)
    examples: dict = field(default_factory=dict)
    duplicates: int = 0

    def add(self, table: dict, key: str, n: int = 1) -> None:
        table[key] = table.get(key, 0) + n


def _clean(text: str | None) -> str:
    return re.sub(r"\s+", " ", (text or "").replace("_comma_", ",")).strip()


def _merge_turns(turns: Iterable[tuple[str, str]]) -> list[dict]:
    """Drop empty turns and join consecutive turns of one role, so roles alternate."""
    out: list[dict] = []
    for role, text in turns:
        text = _clean(text)
        if not text:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"] += " " + text
        else:
            out.append({"role": role, "content": text})
    return out


def read_empathetic_dialogues(root: Path) -> Iterator[Conversation]:
    root = Path(root)
    split_of: dict[str, str] = {}
    for split, name in (("valid", "fixed_valid.csv"), ("test", "fixed_test.csv")):
        path = root / "splits_valid_test" / name
        if path.is_file():
            with open(path, encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    split_of[row["conv_id"]] = split
    files = sorted((root / "by_emotion_annotated").glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no EmpatheticDialogues CSVs under {root / 'by_emotion_annotated'}")
    for path in files:
        convs: dict[str, dict] = {}
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                c = convs.setdefault(row["Dialog_ID"], {"turns": [], "situation": None})
                if row.get("Type") == "situation":
                    c["situation"] = _clean(row.get("Text"))
                elif row.get("Type") == "utterance":
                    c["turns"].append(("user" if row.get("Actor") == "speaker" else "assistant", row.get("Text")))
        for conv_id, c in convs.items():
            yield Conversation(conv_id, "empatheticdialogues", split_of.get(conv_id, "train"), _merge_turns(c["turns"]),
                               emotion=path.stem, situation=c["situation"])


def read_esconv(root: Path) -> Iterator[Conversation]:
    root = Path(root)
    found = False
    for split in ("train", "valid", "test"):
        path = root / f"{split}.txt"
        if not path.is_file():
            continue
        found = True
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f):
                try:
                    d = json.loads(line)
                    turns = [("user" if t["speaker"] == "usr" else "assistant", t.get("text")) for t in d["dialog"]]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
                yield Conversation(f"esconv:{split}:{i}", "esconv", split, _merge_turns(turns),
                                   emotion=d.get("emotion_type"), situation=_clean(d.get("situation")))
    if not found:
        raise FileNotFoundError(f"no ESConv train.txt / valid.txt under {root}")


def read_jsonl(path: Path) -> Iterator[Conversation]:
    """Your own conversations (format in the module docstring). Broken lines are skipped, not fatal."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            try:
                d = json.loads(line)
                turns = [(m["role"], m["content"]) for m in d["messages"] if m.get("role") in ("user", "assistant")]
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
            split = d.get("split", "train") if d.get("split") in ("train", "valid", "test") else "train"
            yield Conversation(str(d.get("id", f"{Path(path).stem}:{i}")), "jsonl", split, _merge_turns(turns))


def find_sources(data_dir: str | None, jsonl: list[str] | None) -> list[Iterator[Conversation]]:
    sources = [read_jsonl(Path(p)) for p in (jsonl or [])]
    root = data_dir or (None if jsonl else os.environ.get(DATA_ENV))
    if root:
        root = Path(root).expanduser()
        if (root / "empatheticdialogues").is_dir():
            sources.append(read_empathetic_dialogues(root / "empatheticdialogues"))
        if (root / "esconv").is_dir():
            sources.append(read_esconv(root / "esconv"))
        if not sources:
            raise FileNotFoundError(f"no empatheticdialogues/ or esconv/ folder under {root}")
    if not sources:
        raise FileNotFoundError(f"give --data-dir (or ${DATA_ENV}) with empatheticdialogues/ and esconv/, or --jsonl")
    return sources


# The datasets' own emotion labels as the nearest GoEmotions label (the classifier's label set), for
# training with the gold label in the state (``--gold-weight``). EmpatheticDialogues has 32 labels, ESConv
# its seekers' emotion types; a label with no counterpart here is left to the classifier alone.
GOLD_TO_GOEMOTIONS = {
    # EmpatheticDialogues
    "afraid": "fear", "angry": "anger", "annoyed": "annoyance", "anticipating": "excitement",
    "anxious": "nervousness", "apprehensive": "nervousness", "ashamed": "embarrassment", "caring": "caring",
    "confident": "pride", "content": "joy", "devastated": "grief", "disappointed": "disappointment",
    "disgusted": "disgust", "embarrassed": "embarrassment", "excited": "excitement", "faithful": "caring",
    "furious": "anger", "grateful": "gratitude", "guilty": "remorse", "hopeful": "optimism",
    "impressed": "admiration", "jealous": "desire", "joyful": "joy", "lonely": "sadness", "nostalgic": "love",
    "prepared": "optimism", "proud": "pride", "sad": "sadness", "sentimental": "love", "surprised": "surprise",
    "terrified": "fear", "trusting": "approval",
    # ESConv
    "anxiety": "nervousness", "depression": "sadness", "sadness": "sadness", "anger": "anger", "fear": "fear",
    "disgust": "disgust", "shame": "embarrassment", "nervousness": "nervousness", "guilt": "remorse",
    "jealousy": "desire", "pain": "sadness",
}


def with_gold(probabilities: dict[str, float], label: str | None, weight: float) -> dict[str, float]:
    """The classifier's probabilities moved ``weight`` of the way towards the gold label: every label
    scaled by ``1 - weight``, and ``weight`` added to the gold one (unchanged where there is none)."""
    target = GOLD_TO_GOEMOTIONS.get((label or "").strip().lower())
    if not weight or target is None:
        return probabilities
    out = {k: (1.0 - weight) * v for k, v in probabilities.items()}
    out[target] = out.get(target, 0.0) + weight
    return out


class StateReader:
    """The emotion state for every user turn of a conversation: the classifier and tracker, exactly as the
    bot computes it while serving; with ``gold_weight`` > 0, each turn's reading is first moved towards
    the conversation's own gold label (``with_gold``), so the state carries what the text may not show."""

    def __init__(self, classifier=None, gold_weight: float = 0.0):
        self.classifier = classifier
        self.gold_weight = gold_weight

    def states(self, conv: Conversation) -> list:
        from bot.emotion import EmotionState, EmotionTracker

        users = [m["content"] for m in conv.messages if m["role"] == "user"]
        if self.classifier is None:
            return [EmotionState.unavailable(turn=i + 1) for i in range(len(users))]
        tracker = EmotionTracker()
        probs = self.classifier.predict(users) if users else []
        return [tracker.update(with_gold(p, conv.emotion, self.gold_weight)) for p in probs]


def conversation_examples(conv: Conversation, book, reader: StateReader) -> Iterator[dict]:
    """One example per assistant turn that follows a user turn."""
    from bot.crisis import detect_crisis

    states = reader.states(conv)
    user_turns = 0
    for i, m in enumerate(conv.messages):
        if m["role"] == "user":
            user_turns += 1
            continue
        if user_turns == 0:  # the assistant spoke first: nothing to answer yet
            continue
        state = states[user_turns - 1]
        history, last = conv.messages[:i - 1], conv.messages[i - 1]
        signal = detect_crisis(last["content"])  # as the bot does: crisis guidance for flagged messages
        crisis = signal.category if signal else None
        yield {
            "id": f"{conv.id}#{i}", "source": conv.source, "split": conv.split, "dataset_emotion": conv.emotion,
            "messages": book.render(history, last["content"], state, crisis), "reply": m["content"],
            "emotion_state": state.summary(), "guidance": book.guidance_key(state, crisis),
        }


def in_fraction(conv_id: str, fraction: float) -> bool:
    """A fixed pseudo-random share of conversations, chosen by a hash of the id (same every run)."""
    return int(hashlib.sha256(conv_id.encode("utf-8")).hexdigest()[:8], 16) < fraction * 0xFFFFFFFF


def prepare(sources: list[Iterator[Conversation]], output: Path, classifier=None, prompts_dir: str | None = None,
            limit: int | None = None, progress: bool = True, fraction: float = 1.0, gold_weight: float = 0.0,
            gold_splits: tuple[str, ...] = ("train",)) -> Counts:
    """Write ``{split}.jsonl`` files of examples and ``counts.json`` under ``output``. ``gold_weight``
    applies to the conversations of ``gold_splits`` only: validation examples keep the serving-time
    state, so validation loss says what the bot will see."""
    from bot.prompting import PromptBook

    book = PromptBook(prompts_dir)
    readers = {True: StateReader(classifier, gold_weight), False: StateReader(classifier)}
    counts = Counts()
    seen: set[str] = set()
    output.mkdir(parents=True, exist_ok=True)
    files = {}
    try:
        n_conv = 0
        for source in sources:
            for conv in source:
                if limit and n_conv >= limit:
                    break
                if fraction < 1.0 and not in_fraction(conv.id, fraction):
                    continue
                key = f"{conv.source}/{conv.split}"
                if not any(m["role"] == "assistant" for m in conv.messages[1:]):
                    counts.add(counts.dropped_conversations, key)
                    continue
                counts.add(counts.conversations, key)
                n_conv += 1
                for ex in conversation_examples(conv, book, readers[conv.split in gold_splits]):
                    digest = hashlib.sha256(json.dumps([ex["messages"][1:], ex["reply"]]).encode()).hexdigest()
                    if digest in seen:
                        counts.duplicates += 1
                        continue
                    seen.add(digest)
                    if ex["split"] not in files:
                        files[ex["split"]] = open(output / f"{ex['split']}.jsonl", "w", encoding="utf-8")
                    files[ex["split"]].write(json.dumps(ex, ensure_ascii=False) + "\n")
                    counts.add(counts.examples, key)
                if progress and n_conv % 2000 == 0:
                    print(f"{n_conv} conversations, {sum(counts.examples.values())} examples", flush=True)
    finally:
        for f in files.values():
            f.close()
    (output / "counts.json").write_text(json.dumps(counts.__dict__, indent=1, sort_keys=True))
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help=f"folder with empatheticdialogues/ and esconv/ (default ${DATA_ENV})")
    p.add_argument("--jsonl", action="append", help="your own conversations (repeatable)")
    p.add_argument("--output", default="runs/sft-data")
    p.add_argument("--emotion-classifier", default="goemotions-minilm",
                   help="classifier for the emotion state ('' for none: the state says unavailable)")
    p.add_argument("--prompts-dir", default=None)
    p.add_argument("--limit", type=int, default=None, help="only the first N conversations (a quick run)")
    p.add_argument("--fraction", type=float, default=1.0,
                   help="keep this share of conversations, chosen by a hash of their id (a quick, still varied run)")
    p.add_argument("--gold-weight", type=float, default=0.0,
                   help="move each train turn's emotion reading this far towards the dataset's own label "
                        "(0: the classifier's state alone, as served; validation always keeps the served state)")
    args = p.parse_args(argv)
    if not 0.0 <= args.gold_weight <= 1.0:
        p.error("--gold-weight must lie between 0 and 1")
    classifier = None
    if args.emotion_classifier:
        from bot.emotion import EmotionClassifier

        classifier = EmotionClassifier(args.emotion_classifier)
    counts = prepare(find_sources(args.data_dir, args.jsonl), Path(args.output), classifier, args.prompts_dir, args.limit,
                     fraction=args.fraction, gold_weight=args.gold_weight)
    print(json.dumps(counts.__dict__, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
