"""How often the bot reads a message as glad, against the datasets' own emotion labels.

    python -m eval.gladness --data-dir ../shared/data [--ed 1200] [--esconv 600] [--output FILE]

The ``sympathy_to_good_news`` reply check (``bot.replycheck``) flags "I'm so sorry to hear that" when
the person's message reads as glad (``bot.core.is_glad``). Reading sadness as gladness turns the
check against the reply a distressed person needs, so this measures both sides on validation data:
the first user message of EmpatheticDialogues valid conversations, grouped by the conversation's own
label (glad: excited, proud, grateful...; distress: sad, lonely, afraid...), and seeker turns of
ESConv valid (people who came for emotional support). ``--sample`` prints messages read as glad.

Beside it, ``good_news``: how often the bot reads plain good news from the words
(``bot.core.plain_good_news``: "passed my driving test", "biopsy came back benign"), which gives the
joy and relief openers and the checks that no reply doubts or ignores the news. ``--messages FILE``
(JSONL, ``{"label": "good" | "not", "text": ...}``; ``--split`` keeps one ``split``) also reports its
recall and precision on a labelled set of messages (``data/safety/good_news_messages.jsonl``).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ED_GLAD = ("excited", "proud", "grateful", "impressed", "hopeful", "confident", "joyful", "content", "caring",
           "trusting", "faithful")
ED_DISTRESS = ("sad", "lonely", "devastated", "angry", "furious", "annoyed", "disgusted", "afraid", "terrified",
               "anxious", "apprehensive", "embarrassed", "ashamed", "guilty", "jealous", "disappointed")


def _state(probabilities: dict[str, float]):
    from bot.emotion import EmotionState

    return EmotionState(available=True, turn=1, last_turn=probabilities)


def _readings(clf, texts: list[str]) -> tuple[list[bool], list[bool]]:
    """For each message on its own: read as glad (``is_glad``), and read as plain good news."""
    from bot.core import is_glad, plain_good_news

    glad: list[bool] = []
    news: list[bool] = []
    for i in range(0, len(texts), 64):
        batch = texts[i:i + 64]
        for text, p in zip(batch, clf.predict(batch)):
            glad.append(is_glad(_state(p)))
            news.append(plain_good_news([{"role": "user", "content": text}], _state(p)) is not None)
    return glad, news


def gladness(data_dir: str | Path, ed: int = 1200, esconv: int = 600, seed: int = 0,
             classifier: str = "goemotions-minilm", sample: int = 0, messages: str | Path | None = None,
             split: str | None = None) -> dict:
    from bot.emotion import EmotionClassifier
    from finetune.dialogue_data import read_empathetic_dialogues, read_esconv

    root = Path(data_dir)
    rng = random.Random(seed)
    convs = [c for c in read_empathetic_dialogues(root / "empatheticdialogues")
             if c.split == "valid" and c.messages and c.messages[0]["role"] == "user"]
    rng.shuffle(convs)
    convs = convs[:ed]
    seekers = [m["content"] for c in read_esconv(root / "esconv") if c.split == "valid"
               for m in c.messages if m["role"] == "user"]
    rng.shuffle(seekers)
    seekers = seekers[:esconv]
    clf = EmotionClassifier(classifier)
    ed_read, ed_news = _readings(clf, [c.messages[0]["content"] for c in convs])
    es_read, es_news = _readings(clf, seekers)

    def share(flags: list[bool], news: list[bool]) -> dict:
        return {"n": len(flags), "read_glad": sum(flags) / len(flags) if flags else None,
                "good_news": sum(news) / len(news) if news else None}

    def of(labels) -> tuple[list[bool], list[bool]]:
        picked = [i for i, c in enumerate(convs) if c.emotion in labels]
        return [ed_read[i] for i in picked], [ed_news[i] for i in picked]

    result = {
        "ed_valid_labelled_glad": share(*of(ED_GLAD)),
        "ed_valid_labelled_distress": share(*of(ED_DISTRESS)),
        "esconv_valid_seekers": share(es_read, es_news),
    }
    if messages:
        rows = [json.loads(line) for line in Path(messages).read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = [r for r in rows if split is None or r.get("split") == split]
        _, news = _readings(clf, [r["text"] for r in rows])
        good = [r["label"] == "good" for r in rows]
        hits = sum(n and g for n, g in zip(news, good))
        result["messages"] = {"n": len(rows), "good": sum(good), "read_good": sum(news),
                              "recall": hits / sum(good) if any(good) else None,
                              "precision": hits / sum(news) if any(news) else None,
                              "missed": [r["text"] for r, n, g in zip(rows, news, good) if g and not n][:sample],
                              "wrongly_read": [r["text"] for r, n, g in zip(rows, news, good) if n and not g][:sample]}
    if sample:
        result["esconv_read_glad_sample"] = [t for t, g in zip(seekers, es_read) if g][:sample]
        result["ed_distress_read_glad_sample"] = [c.messages[0]["content"] for c, g in zip(convs, ed_read)
                                                  if g and c.emotion in ED_DISTRESS][:sample]
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, help="the datasets folder (empatheticdialogues/, esconv/)")
    ap.add_argument("--ed", type=int, default=1200, help="ED valid conversations to read")
    ap.add_argument("--esconv", type=int, default=600, help="ESConv valid seeker turns to read")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", type=int, default=0, help="list this many messages read as glad")
    ap.add_argument("--messages", help="a labelled JSONL set ({label: good|not, text}) to read for good news, e.g. "
                                       "data/safety/good_news_messages.jsonl")
    ap.add_argument("--split", help="only the messages of this split (dev, test)")
    ap.add_argument("--output", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    result = gladness(args.data_dir, args.ed, args.esconv, args.seed, sample=args.sample, messages=args.messages,
                      split=args.split)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
