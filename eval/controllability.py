"""Does the reply follow the emotion state? Set the state by hand and read what the model writes.

    python -m eval.controllability --output runs/control [--samples 4] [bot options...]

Each context below (written for this check: open messages that fit several feelings, "I saw my old
teacher at the supermarket today") is rendered with each hand-set state (grief, joy, anger, fear,
neutral: one GoEmotions label at 0.8, so the prompt carries that state's line and guidance), and the
reply model writes ``samples`` replies to it (seeded, the bot's sampling settings, no ranking: the
model's own response to the state). The bot's emotion classifier reads every reply, and the table
gives, for each set state, the mean probability of each Ekman group in the replies.

What a person would expect is not that a reply mirrors the feeling (a listener answers anger with
calm, not anger), but that it changes with it: condolence and sadness words for grief, shared
delight for joy. So the check reads contrasts: ``sadness`` higher under grief than under joy, ``joy``
higher under joy than under grief, and how often a reply to the same context differs at all between
states. A model that ignores the state shows no contrast (the replies are the same draws).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CONTEXTS = [
    "I saw my old teacher at the supermarket today.",
    "My sister called me this morning with some news.",
    "I got the results back from the vet about my dog.",
    "We finally cleared out my grandmother's house this weekend.",
    "My manager wants to talk to me first thing tomorrow.",
    "I drove past the house I grew up in.",
    "The letter from the university arrived.",
    "I found the ring my dad gave me.",
    "My best friend is moving across the country.",
    "I spent the whole evening looking at old photos.",
    "The doctor called about my test results.",
    "Today was my last day at the job I've had for ten years.",
]
STATES = ("grief", "joy", "anger", "fear", "neutral")


def set_state(label: str, confidence: float = 0.8):
    """An emotion state with one label at ``confidence`` (the rest neutral), as the tracker would hold it."""
    from bot.emotion import LABEL_TO_SENTIMENT, EmotionScore, EmotionState

    probs = {label: confidence} if label == "neutral" else {label: confidence, "neutral": 1 - confidence}
    valence = {"positive": "positive", "negative": "negative"}.get(LABEL_TO_SENTIMENT.get(label, ""), "neutral")
    return EmotionState(available=True, turn=1, top=(EmotionScore(label, confidence, "new"),), valence=valence,
                        intensity=0.0 if label == "neutral" else confidence, probabilities=dict(probs),
                        last_turn=dict(probs))


def run(bot, samples: int = 4, contexts=CONTEXTS, states=STATES, seed: int = 0) -> dict:
    """Replies per (context, state) and the mean Ekman-group probabilities of the replies per state."""
    import numpy as np

    from bot.emotion import EKMAN_GROUPS, group_probabilities
    from bot.generation import StreamStats

    settings = bot.config.generation.__class__(**vars(bot.config.generation))
    settings.seed = seed
    from bot.replycheck import reply_problems

    rows = []
    for ci, text in enumerate(contexts):
        conversation = [{"role": "user", "content": text}]
        # with guidance at decoding (``--guidance``), the prompt without the state is the unconditioned one
        extra = ({"unconditioned": bot.prompt(conversation, stateless=True)[0]} if settings.guidance != 1 else {})
        for state in states:
            messages = bot.prompt(conversation, state=set_state(state))[0]
            replies = bot.reply_model.candidates(messages, settings, samples, StreamStats(), **extra)
            rows += [{"context": ci, "state": state, "reply": r.strip(),
                      "problems": list(reply_problems(r.strip(), conversation, state in ("grief", "anger", "fear"),
                                                      messages[0]["content"], done))}
                     for r, done in replies if r.strip()]
    readings = bot._classify([r["reply"] for r in rows]) if rows else []
    groups = list(EKMAN_GROUPS)
    for r, probs in zip(rows, readings):
        r["groups"] = group_probabilities(probs, EKMAN_GROUPS)
    table = {s: {g: float(np.mean([r["groups"][g] for r in rows if r["state"] == s])) for g in groups}
             for s in states}
    by_pair: dict[tuple, set] = {}
    for r in rows:
        by_pair.setdefault((r["context"], r["state"]), set()).add(r["reply"])
    differ = [float(by_pair[(c, "grief")] != by_pair[(c, "joy")]) for c in range(len(contexts))]
    return {"samples": samples, "contexts": len(contexts), "guidance": settings.guidance, "table": table,
            "with_problems": float(np.mean([bool(r["problems"]) for r in rows])) if rows else 0.0,
            "contrast": {"sadness_grief_minus_joy": table["grief"]["sadness"] - table["joy"]["sadness"],
                         "joy_joy_minus_grief": table["joy"]["joy"] - table["grief"]["joy"],
                         "replies_differ_grief_vs_joy": float(np.mean(differ))},
            "rows": rows}


def markdown(result: dict) -> str:
    groups = list(next(iter(result["table"].values())))
    lines = ["| state set by hand | " + " | ".join(groups) + " |", "|---" * (len(groups) + 1) + "|"]
    for state, row in result["table"].items():
        lines.append(f"| {state} | " + " | ".join(f"{row[g]:.2f}" for g in groups) + " |")
    c = result["contrast"]
    lines += ["", f"sadness, grief minus joy: {c['sadness_grief_minus_joy']:+.3f}; joy, joy minus grief: "
                  f"{c['joy_joy_minus_grief']:+.3f}; contexts whose replies differ between grief and joy: "
                  f"{c['replies_differ_grief_vs_joy']:.0%} ({result['contexts']} contexts x {result['samples']} replies); "
                  f"replies with a problem the reply checks catch: {result.get('with_problems', 0):.0%}"]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="runs/control")
    p.add_argument("--samples", type=int, default=4)
    args, rest = p.parse_known_args(argv)
    from bot.cli import _add_model_options, config_from_args
    from bot.core import EmpatheticBot

    bp = argparse.ArgumentParser()
    _add_model_options(bp)
    config = config_from_args(bp.parse_args(rest))
    result = run(EmpatheticBot(config), args.samples)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "control.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    (out / "control.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
