"""Emotion reading and tracking.

``EmotionClassifier`` turns one user message into probabilities over emotion labels (the 28
GoEmotions labels for the project's own classifier, or whatever labels a configured model has).
``EmotionTracker`` folds those readings, turn by turn, into an ``EmotionState``.

When no trained classifier is configured, the tracker reports plainly that emotion tracking is
unavailable: it never invents labels.

Update rule (documented, deliberately simple):

* running probabilities ``r_t = alpha * p_t + (1 - alpha) * r_{t-1}`` with ``alpha = 0.6`` and
  ``r_1 = p_1``: recent turns count most, one stray reading does not erase the picture;
* top emotions: the three labels with the highest running probability, at least ``min_confidence``;
  ``neutral`` is reported only when nothing else qualifies;
* valence: the GoEmotions sentiment group (positive / negative / ambiguous / neutral) with the most
  running probability mass;
* intensity: ``1 - r_t(neutral)`` on a 0..1 scale, the share of the reading that is not neutral;
* trend: the change of each top label's running probability since the previous turn; a change of
  at least ``trend_delta`` is "rising" or "falling", otherwise "steady".
"""

from __future__ import annotations

import json
import logging
import string
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import ModelNotFoundError
from .resolve import resolve_classifier

log = logging.getLogger(__name__)

GOEMOTIONS_LABELS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity",
    "desire", "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear",
    "gratitude", "grief", "joy", "love", "nervousness", "optimism", "pride", "realization", "relief",
    "remorse", "sadness", "surprise", "neutral",
)

# Sentiment grouping published with GoEmotions (Demszky et al., 2020, sentiment_mapping.json).
SENTIMENT_GROUPS = {
    "positive": ("amusement", "excitement", "joy", "love", "desire", "optimism", "caring", "pride",
                 "admiration", "gratitude", "relief", "approval"),
    "negative": ("fear", "nervousness", "remorse", "embarrassment", "disappointment", "sadness", "grief",
                 "disgust", "anger", "annoyance", "disapproval"),
    "ambiguous": ("realization", "surprise", "curiosity", "confusion"),
    "neutral": ("neutral",),
}

# Ekman grouping published with GoEmotions (Demszky et al., 2020, ekman_mapping.json).
EKMAN_GROUPS = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": ("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief", "pride",
            "admiration", "desire", "caring"),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}

GROUPINGS = {"ekman": EKMAN_GROUPS, "sentiment": SENTIMENT_GROUPS}


# How a group's probability comes from its labels' (the rule is saved in ``group_thresholds.json``):
# "noisy-or": 1 - prod(1 - p), the chance that at least one of its labels is present if they were
# independent; "max": its most probable label's. Noisy-or decides groups better on GoEmotions dev
# (2-fold cross-validated Ekman macro-F1 0.644 vs 0.633 for the single LoRA classifier shipped before
# the ensemble), most for the groups with many labels (joy has 12).
GROUP_RULES = ("noisy-or", "max")
DEFAULT_GROUP_RULE = "noisy-or"


def group_probability_matrix(probs, label_names: Sequence[str], groups: dict[str, tuple[str, ...]],
                             rule: str = DEFAULT_GROUP_RULE):
    """(n, labels) probabilities -> ((n, groups) array, group names), by ``rule`` (see ``GROUP_RULES``).
    A group none of whose labels is known gets 0."""
    import numpy as np

    if rule not in GROUP_RULES:
        raise ValueError(f"unknown group rule {rule!r}; expected one of {', '.join(GROUP_RULES)}")
    probs = np.asarray(probs, dtype=np.float64)
    index = {name: i for i, name in enumerate(label_names)}
    names = list(groups)
    out = np.zeros((probs.shape[0], len(names)), dtype=np.float32)
    for g, group in enumerate(names):
        member = probs[:, [index[label] for label in groups[group] if label in index]]
        if member.shape[1]:
            out[:, g] = member.max(axis=1) if rule == "max" else 1.0 - np.prod(1.0 - member, axis=1)
    return out, names


def group_probabilities(probabilities: dict[str, float], groups: dict[str, tuple[str, ...]],
                        rule: str = DEFAULT_GROUP_RULE) -> dict[str, float]:
    """One reading's label probabilities -> group probabilities, by ``rule``."""
    labels = list(probabilities)
    row, names = group_probability_matrix([[probabilities[k] for k in labels]], labels, groups, rule)
    return dict(zip(names, map(float, row[0])))


LABEL_TO_SENTIMENT = {label: group for group, labels in SENTIMENT_GROUPS.items() for label in labels}
LABEL_TO_EKMAN = {label: group for group, labels in EKMAN_GROUPS.items() for label in labels}

UNAVAILABLE_NO_CLASSIFIER = (
    "Emotion tracking is unavailable: no trained emotion classifier is configured "
    "(set model.emotion_classifier / --emotion-classifier to a trained classifier)."
)


@dataclass(frozen=True)
class EmotionScore:
    label: str
    confidence: float
    trend: str = "steady"  # "rising", "falling", "steady" or "new"


@dataclass(frozen=True)
class EmotionState:
    """The running emotion state after a user turn.

    ``available`` is False when no classifier is configured (or it failed); ``reason`` then says why
    and every other field is empty.
    """

    available: bool
    reason: str = ""
    turn: int = 0
    top: tuple[EmotionScore, ...] = ()
    valence: str | None = None
    intensity: float | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    last_turn: dict[str, float] = field(default_factory=dict)

    @classmethod
    def unavailable(cls, reason: str = UNAVAILABLE_NO_CLASSIFIER, turn: int = 0) -> "EmotionState":
        return cls(available=False, reason=reason, turn=turn)

    @property
    def primary(self) -> str | None:
        return self.top[0].label if self.top else None

    def summary(self) -> str:
        """One line a person (or a prompt) can read."""
        if not self.available:
            return self.reason
        if not self.top:
            return "No clear emotion yet."
        parts = [f"{s.label} {s.confidence:.0%}" + ("" if s.trend == "steady" else f" ({s.trend})") for s in self.top]
        return f"{', '.join(parts)}; valence {self.valence}, intensity {self.intensity:.2f}"

    def tag(self) -> str:
        """The state as a compact tag, "[feels: grief 60%, sadness 30%; intensity high; rising]", or "" when
        no emotion is read: the form ``prompts/user.md`` can put before each message (see docs/emotions.md)."""
        if not self.available or not self.top:
            return ""
        level = "low" if (self.intensity or 0.0) < 0.34 else "medium" if self.intensity < 0.67 else "high"
        feels = ", ".join(f"{s.label} {s.confidence:.0%}" for s in self.top)
        trend = self.top[0].trend if self.top[0].trend in ("rising", "falling") else "steady"
        return f"[feels: {feels}; intensity {level}; {trend}]"

    def message_top(self, k: int = 2, min_confidence: float = 0.1) -> list[tuple[str, float]]:
        """The emotions read in the latest message alone (not the running state): up to ``k`` labels
        other than neutral at ``min_confidence`` or more, else the top label."""
        ranked = sorted(self.last_turn.items(), key=lambda kv: -kv[1])
        chosen = [(k_, v) for k_, v in ranked if k_ != "neutral" and v >= min_confidence][:k]
        return chosen or ranked[:1]

    def line(self) -> str:
        """What a person reads under a reply: this message's emotions first, then the conversation's
        running state (which carries earlier turns, so it can lag a change of mood)."""
        if not self.available or not self.top:
            return self.summary()
        now = ", ".join(f"{label} {p:.0%}" for label, p in self.message_top())
        return f"this message: {now} | conversation: {self.summary()}" if now else self.summary()

    def to_dict(self) -> dict:
        return asdict(self)


def sentiment_mass(probabilities: dict[str, float]) -> dict[str, float]:
    """The summed probability of each sentiment group's labels (positive, negative, ambiguous)."""
    mass: dict[str, float] = {}
    for label, p in probabilities.items():
        group = LABEL_TO_SENTIMENT.get(label)
        if group:
            mass[group] = mass.get(group, 0.0) + p
    return mass


# Valence: positive or negative when that side's emotions carry at least VALENCE_FLOOR and 1.5 times the
# other side's, whatever the ambiguous (surprise, confusion...) and neutral labels hold ("I got the job!!! I
# can't believe it" is surprise 97% and positive 30%: positive; "I got laid off today." is neutral 57%
# and negative 32% against positive 16%: negative); else the heaviest sentiment group. Chosen on the 855
# first turns of 971 from EmpatheticDialogues valid whose emotion label has a valence: agreement with it
# 0.709 (0.582 for the heaviest group alone), the opposite valence 0.150 (0.106), neutral or ambiguous
# 0.142 (0.311); floors 0.1-0.3 and ratios 1.5-3 trade agreement for opposite readings along one line.
VALENCE_FLOOR, VALENCE_RATIO = 0.2, 1.5


def valence_of(probabilities: dict[str, float]) -> str | None:
    """"positive", "negative", "ambiguous" or "neutral" for a reading (see ``VALENCE_FLOOR``)."""
    mass = sentiment_mass(probabilities)
    if not mass:
        return None
    pos, neg = mass.get("positive", 0.0), mass.get("negative", 0.0)
    lead, high, low = ("positive", pos, neg) if pos >= neg else ("negative", neg, pos)
    if high >= VALENCE_FLOOR and high >= VALENCE_RATIO * low:
        return lead
    return max(mass.items(), key=lambda kv: kv[1])[0]


class EmotionTracker:
    """Folds per-turn probabilities into a running state. One tracker per conversation."""

    def __init__(self, alpha: float = 0.6, min_confidence: float = 0.1, trend_delta: float = 0.1, top_k: int = 3):
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.alpha, self.min_confidence, self.trend_delta, self.top_k = alpha, min_confidence, trend_delta, top_k
        self.turn = 0
        self.running: dict[str, float] = {}

    def update(self, probabilities: dict[str, float]) -> EmotionState:
        previous = dict(self.running)
        if not self.running:
            self.running = dict(probabilities)
        else:
            labels = set(self.running) | set(probabilities)
            a = self.alpha
            self.running = {k: a * probabilities.get(k, 0.0) + (1 - a) * self.running.get(k, 0.0) for k in labels}
        self.turn += 1
        return self._state(previous, probabilities)

    def _state(self, previous: dict[str, float], last: dict[str, float]) -> EmotionState:
        ranked = sorted(self.running.items(), key=lambda kv: (-kv[1], kv[0]))
        chosen = [(k, v) for k, v in ranked if k != "neutral" and v >= self.min_confidence][: self.top_k]
        if not chosen and ranked:
            chosen = [ranked[0]]
        top = []
        for label, conf in chosen:
            if label not in previous:
                trend = "new" if previous else "steady"
            else:
                delta = conf - previous[label]
                trend = "rising" if delta >= self.trend_delta else "falling" if delta <= -self.trend_delta else "steady"
            top.append(EmotionScore(label, round(conf, 4), trend))
        valence = valence_of(self.running)
        intensity = 1.0 - self.running.get("neutral", 0.0) if "neutral" in self.running else (top[0].confidence if top else 0.0)
        return EmotionState(
            available=True, turn=self.turn, top=tuple(top), valence=valence,
            intensity=round(max(0.0, min(1.0, intensity)), 4),
            probabilities={k: round(v, 4) for k, v in ranked},
            last_turn={k: round(v, 4) for k, v in sorted(last.items(), key=lambda kv: -kv[1])},
        )


def _shown(word: str) -> str:
    """A word as an explanation shows it: without the punctuation around it ("angry," -> "angry")."""
    return word.strip(string.punctuation + "\u201c\u201d\u2018\u2019") or word


def _load_model(location: str, is_local: bool):
    """The classifier model at ``location`` (float32, CPU). A local folder with ``classifier.json`` holds
    a LoRA adapter (merged into the encoder it names) or an ensemble of classifier folders; anything
    else is a full model (the project's mean-pooling head, its ensemble, or any sequence classifier)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from . import emotion_model

    meta_path = Path(location) / "classifier.json"
    if is_local and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("form") == "ensemble":
            members = meta.get("members")
            valid = (isinstance(members, list) and members and
                     all(isinstance(m, str) and m not in ("", ".", "..") and Path(m).name == m for m in members))
            if not valid:
                raise ValueError(f"{meta_path} lists no valid members (sub-folder names)")
            return emotion_model.BertMeanPoolEnsembleForSequenceClassification.from_members(
                [_load_model(str(Path(location) / m), True) for m in members])
        return _load_adapter_form(Path(location), meta)
    architectures = AutoConfig.from_pretrained(location).architectures or []
    cls = AutoModelForSequenceClassification
    for ours in ("BertMeanPoolForSequenceClassification", "BertMeanPoolEnsembleForSequenceClassification"):
        if ours in architectures:
            cls = getattr(emotion_model, ours)  # the project's own heads: no remote code
    return cls.from_pretrained(location, dtype=torch.float32)


def full_classifier(location: str, is_local: bool, device: str = "cpu", truncation_side: str | None = None):
    """A classifier through transformers: ``(tokenizer, model, meta)``, the meta that ``bot.fast_encoder``
    needs to keep a fast copy (None when the model is not one it can hold)."""
    from transformers import AutoTokenizer

    from .fast_encoder import classifier_meta

    tokenizer = AutoTokenizer.from_pretrained(location)
    if truncation_side:
        tokenizer.truncation_side = truncation_side
    model = _load_model(location, is_local).to(device).eval()
    return tokenizer, model, classifier_meta(model)


def _load_adapter_form(folder: Path, meta: dict):
    """A classifier saved as its LoRA adapter (``classifier.json`` + PEFT files): the encoder it names,
    with the adapter and the trained head merged in."""
    from peft import PeftModel

    from .resolve import resolve_encoder

    if meta.get("architecture") != "BertMeanPoolForSequenceClassification" or not meta.get("labels"):
        raise ValueError(f"{folder / 'classifier.json'} does not describe a classifier this version can load")
    base = new_classifier(resolve_encoder(meta.get("encoder")).location, meta["labels"], meta.get("problem_type"))
    return PeftModel.from_pretrained(base, str(folder)).merge_and_unload()


def new_classifier(encoder_location: str, labels: Sequence[str],
                   problem_type: str | None = "multi_label_classification"):
    """The mean-pooling classifier over an encoder, with a new head for ``labels`` (float32, CPU): what
    training starts from, and what a saved adapter is merged into."""
    import torch
    from transformers.utils import logging as hf_logging

    from .emotion_model import BertMeanPoolForSequenceClassification

    labels = list(labels)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the encoder has no head yet (and a pooler the head does not use): expected
    try:
        return BertMeanPoolForSequenceClassification.from_pretrained(
            encoder_location, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)}, problem_type=problem_type, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)


class EmotionClassifier:
    """A sequence-classification model that reads messages and returns label probabilities.

    ``spec``: ``"goemotions-minilm"`` (the classifier shipped with the package), a folder or a hub
    id. A folder holds a full model; a LoRA adapter with ``classifier.json`` naming its encoder (the
    adapter is merged into the encoder on load); or an ensemble: ``classifier.json`` with ``"form":
    "ensemble"`` lists member folders inside it, each a classifier, and a label's probability is the
    mean of theirs (``finetune.ensemble_classifier`` builds one). Multi-label models (``problem_type ==
    "multi_label_classification"``) use a sigmoid per label; others a softmax. Per-label decision
    thresholds come from ``thresholds.json`` when the folder has one (else 0.5); the tracker itself
    works on probabilities.
    """

    def __init__(self, spec: str, device: str = "cpu", max_length: int = 128, cache_dir: str | None = None):
        resolved = resolve_classifier(spec)
        if resolved is None:
            raise ModelNotFoundError(UNAVAILABLE_NO_CLASSIFIER)

        def full():
            return full_classifier(resolved.location, resolved.is_local, device)

        try:
            from .fast_encoder import load

            # a fast copy in the model cache after the first load: no transformers import (cache_dir "": none)
            self.tokenizer, self.model = load("emotion", Path(resolved.location) if resolved.is_local else None,
                                              cache_dir, device, full)
        except ModelNotFoundError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised with what to do
            raise ModelNotFoundError(f"could not load the emotion classifier {spec!r}: {exc}") from exc
        self.resolved = resolved
        self.device = device
        self.max_length = min(max_length, getattr(self.tokenizer, "model_max_length", max_length) or max_length)
        cfg = self.model.config
        self.labels = [cfg.id2label[i] for i in range(cfg.num_labels)]
        self.multi_label = cfg.problem_type == "multi_label_classification"
        def saved(name: str) -> dict:
            path = Path(resolved.location) / name
            return json.loads(path.read_text()) if resolved.is_local and path.is_file() else {}

        self.thresholds = {label: 0.5 for label in self.labels}
        self.thresholds.update(saved("thresholds.json"))
        # the content of group_thresholds.json: "rule" (how group probabilities come from label
        # probabilities, the one the thresholds were tuned for) and, per grouping ("ekman", "sentiment"),
        # a threshold per group
        cuts = saved("group_thresholds.json")
        rule = cuts.get("rule", DEFAULT_GROUP_RULE)
        if rule not in GROUP_RULES:
            log.warning("group_thresholds.json names an unknown group rule %r; using %s without its thresholds",
                        rule, DEFAULT_GROUP_RULE)
            rule, cuts = DEFAULT_GROUP_RULE, {}
        self.group_thresholds: dict = {"rule": rule, **{
            k: v for k, v in cuts.items() if k in GROUPINGS and isinstance(v, dict)}}

    @property
    def group_rule(self) -> str:
        return self.group_thresholds["rule"]

    def predict(self, texts: Sequence[str]) -> list[dict[str, float]]:
        import torch

        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**enc.to(self.device)).logits.float()
        probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return [dict(zip(self.labels, row.tolist())) for row in probs.cpu()]

    def detected(self, probabilities: dict[str, float]) -> list[str]:
        """Labels at or above their tuned threshold, most probable first."""
        hits = [k for k, v in probabilities.items() if v >= self.thresholds.get(k, 0.5)]
        return sorted(hits, key=lambda k: -probabilities[k])

    def groups(self, probabilities: dict[str, float], grouping: str = "ekman") -> dict[str, float]:
        """Group probabilities (``grouping``: "ekman" or "sentiment"), by this classifier's group rule."""
        return group_probabilities(probabilities, GROUPINGS[grouping], self.group_rule)

    def detected_groups(self, probabilities: dict[str, float], grouping: str = "ekman") -> list[str]:
        """Groups at or above their tuned threshold (0.5 without ``group_thresholds.json``), most probable first."""
        probs = self.groups(probabilities, grouping)
        cuts = self.group_thresholds.get(grouping, {})
        return sorted((g for g, v in probs.items() if v >= cuts.get(g, 0.5)), key=lambda g: -probs[g])

    def explain(self, text: str, labels: Sequence[str] | None = None, top_words: int = 5) -> dict[str, list[tuple[str, float]]]:
        """Which words pushed each label: leave-one-out occlusion.

        Each word is removed in turn and the message re-read; a word's weight for a label is the
        probability lost without it (negative: the word held the label back). ``labels`` defaults
        to the three most probable non-neutral labels. One batched forward pass per message.
        """
        words = text.split()
        base = self.predict([text])[0]
        if labels is None:
            labels = [k for k, _ in sorted(base.items(), key=lambda kv: -kv[1]) if k != "neutral"][:3]
        if not words:
            return {label: [] for label in labels}
        variants = [" ".join(words[:i] + words[i + 1:]) for i in range(len(words))]
        occluded = []
        for start in range(0, len(variants), 64):
            occluded += self.predict(variants[start:start + 64])
        out = {}
        for label in labels:
            weights = [(_shown(words[i]), round(base[label] - occluded[i][label], 4)) for i in range(len(words))]
            out[label] = sorted(weights, key=lambda wv: -abs(wv[1]))[:top_words]
        return out
