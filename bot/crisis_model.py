"""Crisis detection that reads meaning: the rules of ``bot.crisis`` and a learned classifier together.

``CrisisDetector(spec).read(text, earlier)`` returns a ``CrisisReading`` or None. How the two combine:

1. the rules (``detect_crisis``) flag the message: their category stands (they are the floor: a
   phrase they know is never missed because the classifier disagrees). It is an alarm when the
   classifier reaches at least its check-in threshold for that category and nothing marks it as past;
   otherwise ("I felt suicidal years ago, I'm fine now", "we lost a patient to an overdose on my
   shift") a check-in;
2. otherwise the classifier flags the message when a category's probability reaches its threshold
   (tuned on a dev split for recall first, see ``finetune.train_crisis``); the category is the one
   furthest over its threshold;
3. otherwise, when earlier user turns are given, the classifier reads the last few user turns together
   ("I've been giving my things away" after turns about hopelessness): risk that builds over a
   conversation is read as a whole. That reading counts only at the category's *alarm* threshold, and
   then as a check-in: measured on everyday conversations, the turns read together flagged three times
   as many harmless replies ("thanks, that helps", "I'll see them on Boxing Day" after a sad turn) as
   the message alone, for one more of 21 disclosures caught. The same reading tempers step 2: a
   message the classifier alone would alarm on, but which read with the turns before it falls under
   the check-in threshold, gets a check-in (the detector of the third round read "My instructor says I
   panic at roundabouts" so after a message about a driving test).

The classifier has two thresholds per category (both chosen on dev, see ``finetune.train_crisis``): at
the *alarm* threshold (few false alarms) a message is treated as a crisis like a rule match; between
the *check-in* threshold (recall first) and the alarm, the reading's ``level`` is ``check_in``: the bot
asks the person directly whether they are in danger, shows the resources, and treats a yes as a crisis.
Asking directly is what crisis lines train their volunteers to do, and it costs a person who is only
sad one kind question instead of a crisis script.

The degree is ``imminent`` (a plan, means or a time) when the classifier's imminence output reaches its
threshold, else ``concern``. ``spec`` is ``"crisis-minilm"`` (shipped with the package) or a folder
written by ``finetune.train_crisis``; ``None`` keeps the rules alone.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .crisis import CATEGORIES, detect_crisis
from .errors import ModelNotFoundError
from .intent import is_greeting

log = logging.getLogger(__name__)

SHIPPED_DETECTOR = "crisis-minilm"
CONVERSATION_TURNS = 4  # the message and up to three user turns before it


@dataclass(frozen=True)
class CrisisReading:
    category: str
    degree: str  # "imminent" or "concern"
    source: str  # "rules", "classifier", "conversation", "check_in_answer" or "check_in_unclear" (asked again)
    phrase: str | None = None  # the phrase the rules matched
    probabilities: dict = field(default_factory=dict)
    level: str = "alarm"  # "alarm", or "check_in": possible, ask the person
    # the classifier flagged the message alone at the check-in level (not the alarm level), and read with the
    # turns before it the conversation is under the check-in threshold ("gonna drive to my nans on sunday 😂"
    # after a driving test passed)
    quiet_in_context: bool = False

    @property
    def flag(self) -> str:
        return f"crisis:{self.category}"


def joined_turns(text: str, earlier: Sequence[str]) -> str:
    """The message with up to ``CONVERSATION_TURNS - 1`` user turns before it, as the classifier reads a
    conversation (its tokenizer cuts long input from the left, so the message itself is always read)."""
    return " ".join([*[t for t in earlier if t][-(CONVERSATION_TURNS - 1):], text])


def shipped_detector_dir() -> Path:
    return Path(__file__).resolve().parent / "models" / SHIPPED_DETECTOR


class CrisisClassifier:
    """The learned part: probabilities for the four categories and for ``imminent``."""

    def __init__(self, spec: str = SHIPPED_DETECTOR, device: str = "cpu", max_length: int = 96,
                 cache_dir: str | None = None):
        from .fast_encoder import load
        from .resolve import _resolve_local_or_hub

        if spec == SHIPPED_DETECTOR:
            folder = shipped_detector_dir()
            if not (folder / "classifier.json").is_file():
                raise ModelNotFoundError(f"the shipped crisis detector is missing from {folder}; reinstall the "
                                         "package or pass --crisis-detector '' to use the rules alone")
        else:
            resolved = _resolve_local_or_hub(spec, "crisis detector", "--crisis-detector")
            folder = Path(resolved.location)
            if not resolved.is_local or not (folder / "thresholds.json").is_file():
                raise ModelNotFoundError(f"the crisis detector {spec!r} is not a folder written by finetune.train_crisis")
        def full():
            from .emotion import full_classifier

            settings = json.loads((folder / "classifier.json").read_text()) if (folder / "classifier.json").is_file() else {}
            return full_classifier(str(folder), True, device, settings.get("truncation_side", "right"))

        try:
            # a fast copy in the model cache after the first load (see bot.fast_encoder; cache_dir "": none)
            self.tokenizer, self.model = load("crisis", folder, cache_dir, device, full)
            self.thresholds = json.loads((folder / "thresholds.json").read_text())
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise ModelNotFoundError(f"could not load the crisis detector {spec!r}: {exc}") from exc
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        if not set(CATEGORIES) <= set(self.labels):
            raise ModelNotFoundError(f"the crisis detector {spec!r} does not predict {', '.join(CATEGORIES)}")
        self.folder, self.device, self.max_length = folder, device, max_length

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        import torch

        if not texts:
            return []
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
        with torch.inference_mode():
            probs = torch.sigmoid(self.model(input_ids=enc["input_ids"].to(self.device),
                                             attention_mask=enc["attention_mask"].to(self.device)).logits.float())
        return [{label: round(float(p), 4) for label, p in zip(self.labels, row)} for row in probs.cpu()]

    def flagged(self, probs: dict[str, float], level: str = "alarm") -> str | None:
        """The most probable category at or over its ``level`` threshold ("alarm" or "check_in"), or None."""
        limits = self.thresholds if level == "alarm" else self.thresholds.get("check_in", self.thresholds)
        over = [c for c in CATEGORIES if probs[c] >= limits[c]]
        return max(over, key=lambda c: probs[c]) if over else None

    def degree(self, probs: dict[str, float]) -> str:
        return "imminent" if probs.get("imminent", 0.0) >= self.thresholds.get("imminent", 0.5) else "concern"


_PAST = re.compile(r"\b(?:years? ago|months? ago|used to|back (?:then|when|in)|in the past|when i was (?:younger|a kid|a "
                   r"teen|\d+)|(?:i'?m|i am) (?:doing )?(?:better|fine|okay|ok|good|in a good place) now|no longer|"
                   r"anymore\b.*\b(?:better|fine|okay))\b", re.IGNORECASE)


def _present_tense(text: str) -> bool:
    """No sign that what the message describes is over ("years ago", "I'm better now")."""
    return not _PAST.search(text)


# A medical emergency told as how someone died ("my dad died three weeks ago" ... "he had a heart attack at
# work, he was 61"): grief, not an emergency to call about. Only the past-tense rule phrase ("had a heart
# attack / stroke / seizure"; never an overdose, "not breathing", "unconscious"...), only when the message or
# the three turns before it tell of a death, and only when nothing in the message is happening now.
_PAST_EVENT = re.compile(r"^had a (?:heart attack|stroke|seizure)$", re.IGNORECASE)
_A_DEATH = re.compile(r"\b(?:died|passed away|passed on|funeral|his death|her death|killed him|killed her)\b", re.IGNORECASE)
_HAPPENING_NOW = re.compile(r"\b(?:now|right now|just|at the moment|currently|tonight|today|this (?:morning|evening|"
                            r"afternoon)|(?:an|one|two|a few) hours? ago|minutes? ago|is having|is not|isn'?t|not "
                            r"breathing|won'?t|can'?t|cannot|unconscious|unresponsive|collapsed|help|please|hospital|"
                            r"ambulance|911|999|112)\b", re.IGNORECASE)


def _told_death(signal, text: str, earlier: Sequence[str]) -> bool:
    """``signal`` is the past-tense medical phrase, the message (or the last three turns before it) tells of
    a death, and nothing in the message is happening now."""
    return (signal.category == "medical_emergency" and bool(_PAST_EVENT.match(signal.phrase.strip()))
            and bool(_A_DEATH.search(" ".join([*earlier[-3:], text]))) and not _HAPPENING_NOW.search(text))


class CrisisDetector:
    """Rules + classifier (see the module docstring). ``classifier=None`` keeps the rules alone."""

    def __init__(self, classifier: CrisisClassifier | None = None):
        self.classifier = classifier

    def read(self, text: str, earlier: Sequence[str] = ()) -> CrisisReading | None:
        signal = detect_crisis(text)
        if signal is not None and _told_death(signal, text, earlier):
            signal = None  # how someone died, not an emergency now (the classifier still reads the message)
        if self.classifier is None:
            if signal is None:
                return None
            return CrisisReading(signal.category, "concern", "rules", signal.phrase)
        if signal is None and is_greeting(text):
            return None  # "привет", "こんにちは", "ciao": a hello alone is never read as danger (the classifier
            # learned scripts it saw mostly in crisis examples)
        texts = [text] + ([joined_turns(text, earlier)] if any(earlier) else [])
        probs = self.classifier.predict(texts)
        alone = probs[0]
        if signal is not None:  # the floor: a rule match is at least a check-in
            sure = any(alone[signal.category] >= limits.get(signal.category, 1.0)
                       for limits in (self.classifier.thresholds, self.classifier.thresholds.get("check_in", {})))
            return CrisisReading(signal.category, self.classifier.degree(alone), "rules", signal.phrase, alone,
                                 "alarm" if sure and _present_tense(text) else "check_in")
        check_in = self.classifier.thresholds.get("check_in", self.classifier.thresholds)
        for level in ("alarm", "check_in"):  # the message alone
            category = self.classifier.flagged(alone, level)
            if category:
                quiet = len(probs) > 1 and probs[1][category] < check_in[category]
                if level == "alarm" and quiet:
                    level = "check_in"  # read in its conversation the message is not a crisis: ask, don't alarm
                    quiet = False  # an alarm on its own: never set aside (see ``quiet_in_context``)
                return CrisisReading(category, self.classifier.degree(alone), "classifier", None, alone, level, quiet)
        if len(probs) > 1:  # the recent turns together: only at the alarm threshold, and then a question
            category = self.classifier.flagged(probs[1], "alarm")
            if category:
                return CrisisReading(category, self.classifier.degree(probs[1]), "conversation", None, probs[1],
                                     "check_in")
        return None

    def harmful_replies(self, replies: Sequence[str]) -> list[bool]:
        """Whether each reply reads as self-harm or violence talk of its own (for replies to a person who
        raised neither): the classifier at its self-harm and harm-to-others thresholds, but never below
        0.5. Without a classifier, nothing is flagged here (the reply checks' rules still apply)."""
        if self.classifier is None or not replies:
            return [False] * len(replies)
        t = self.classifier.thresholds
        return [p["self_harm"] >= max(0.5, t["self_harm"]) or p["harm_to_others"] >= max(0.5, t["harm_to_others"])
                for p in self.classifier.predict(list(replies))]
