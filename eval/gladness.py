"""How often the bot reads a message as glad, against the datasets' own emotion labels.

    python -m eval.gladness --data-dir ../shared/data [--ed 1200] [--esconv 600] [--output FILE]

The ``sympathy_to_good_news`` reply check (``bot.replycheck``) flags "I'm so sorry to hear that" when
the person's message reads as glad (``bot.core.is_glad``). Reading sadness as gladness turns the
check against the reply a distressed person needs, so this measures both sides on validation data:
the first user message of EmpatheticDialogues valid conversations, grouped by the conversation's own
label (glad: excited, proud, grateful...; distress: sad, lonely, afraid...), and seeker turns of
ESConv valid (people who came for emotional support). ``--sample`` prints messages read as glad.
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


def gladness(data_dir: str | Path, ed: int = 1200, esconv: int = 600, seed: int = 0,
             classifier: str = "goemotions-minilm", sample: int = 0) -> dict:
    from bot.core import is_glad
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

    def glad(texts: list[str]) -> list[bool]:
        out: list[bool] = []
        for i in range(0, len(texts), 64):
            out += [is_glad(_state(p)) for p in clf.predict(texts[i:i + 64])]
        return out

    ed_read = glad([c.messages[0]["content"] for c in convs])
    es_read = glad(seekers)

    def share(flags: list[bool]) -> dict:
        return {"n": len(flags), "read_glad": sum(flags) / len(flags) if flags else None}

    result = {
        "ed_valid_labelled_glad": share([g for c, g in zip(convs, ed_read) if c.emotion in ED_GLAD]),
        "ed_valid_labelled_distress": share([g for c, g in zip(convs, ed_read) if c.emotion in ED_DISTRESS]),
        "esconv_valid_seekers": share(es_read),
    }
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
    ap.add_argument("--output", help="write the figures as JSON here")
    args = ap.parse_args(argv)
    result = gladness(args.data_dir, args.ed, args.esconv, args.seed, sample=args.sample)
    text = json.dumps(result, indent=1, ensure_ascii=False)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
