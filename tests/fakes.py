"""Small stand-ins for the models, so unit tests run in milliseconds and fail for real reasons."""

from __future__ import annotations

import threading
import time

from bot.config import GenerationConfig


class FakeReplyModel:
    """Counts one token per whitespace-separated word plus 3 per message; replies from a script."""

    device = "cpu"

    def __init__(self, replies=None, context_window: int = 8192, fail_on: str | None = None, delay: float = 0.0):
        self.delay = delay
        self.replies = list(replies or [])
        self.context_window = context_window
        self.fail_on = fail_on
        self.prompts: list[list[dict]] = []
        self.lock = threading.Lock()

    def count_tokens(self, messages: list[dict]) -> int:
        return sum(3 + len(m["content"].split()) for m in messages)

    def stream(self, messages, settings: GenerationConfig, stats, cancel=None):
        with self.lock:
            self.prompts.append(messages)
        user = messages[-1]["content"]
        if self.fail_on and self.fail_on in user:
            yield "partial "
            raise RuntimeError("simulated model failure")
        text = self.replies.pop(0) if self.replies else f"I hear you: {user[:40]}"
        stats.prompt_tokens = self.count_tokens(messages)
        for word in text.split(" "):
            if cancel is not None and cancel.is_set():
                stats.stopped = "cancelled"
                return
            stats.new_tokens += 1
            if self.delay:
                time.sleep(self.delay)
            yield word + " "


    def candidates(self, messages, settings: GenerationConfig, n: int, stats, cancel=None):
        """One scripted reply per candidate asked for while the script lasts (at least one)."""
        out = []
        for i in range(max(1, n) if len(self.replies) >= n else 1):
            words = list(self.stream(messages, settings, stats, cancel))
            out.append(("".join(words).strip(), stats.stopped != "max_new_tokens"))
        stats.generate_s = 0.001
        return out


class FakeRanker:
    """Scores a candidate by how many words it shares with the user's last message."""

    def score(self, messages, candidates):
        said = set(messages[-1]["content"].lower().split())
        return [float(len(said & set(c.lower().split()))) for c in candidates]

    def context_vector(self, messages):
        return [1.0]


class KeywordClassifier:
    """A deterministic emotion 'classifier' over GoEmotions labels, keyed on words."""

    labels = ("sadness", "anger", "joy", "fear", "neutral")
    KEYWORDS = {"sad": "sadness", "lost": "sadness", "died": "sadness", "angry": "anger", "furious": "anger", "happy": "joy", "promotion": "joy",
                "scared": "fear", "afraid": "fear"}

    def predict(self, texts):
        out = []
        for t in texts:
            probs = {label: 0.02 for label in self.labels}
            hits = [label for word, label in self.KEYWORDS.items() if word in t.lower()]
            for label in hits:
                probs[label] = 0.9
            probs["neutral"] = 0.05 if hits else 0.9
            out.append(probs)
        return out

    def explain(self, text, labels=None, top_words=5):
        """Words that are keywords get weight 0.9 for their label."""
        out = {}
        for word, label in self.KEYWORDS.items():
            hits = [w for w in text.split() if word in w.lower()]
            if hits:
                out.setdefault(label, []).extend((w, 0.9) for w in hits)
        return out


class FakeCrisisClassifier:
    """A stand-in for the learned crisis classifier: keywords give probabilities."""

    labels = ("self_harm", "harm_to_others", "abuse", "medical_emergency", "imminent")
    thresholds = {"self_harm": 0.5, "harm_to_others": 0.5, "abuse": 0.5, "medical_emergency": 0.5, "imminent": 0.5}
    KEYWORDS = {"notes for everyone": "self_harm", "saving up my pills": "self_harm", "not wake up": "self_harm",
                "i have a gun": "harm_to_others", "keep secrets": "abuse", "giving my things": "self_harm",
                "shoot them": "harm_to_others"}
    MAYBE = {"so tired of everything": "self_harm"}  # probability 0.4: a check-in, not an alarm

    def __init__(self):
        self.calls: list[list[str]] = []

    def predict(self, texts):
        self.calls.append(list(texts))
        out = []
        for t in texts:
            p = {label: 0.01 for label in self.labels}
            for word, label in self.KEYWORDS.items():
                if word in t.lower():
                    p[label] = 0.9
            for word, label in self.MAYBE.items():
                if word in t.lower():
                    p[label] = max(p[label], 0.4)
            if "saturday" in t.lower() or "tonight" in t.lower():
                p["imminent"] = 0.9
            out.append(p)
        return out

    def flagged(self, probs, level="alarm"):
        limit = 0.5 if level == "alarm" else 0.3
        over = [c for c in self.labels[:4] if probs[c] >= limit]
        return max(over, key=lambda c: probs[c]) if over else None

    def degree(self, probs):
        return "imminent" if probs["imminent"] >= 0.5 else "concern"


class FakePool:
    """A reply pool that answers every search with the same rows (see ``bot.retrieval.ReplyPool``)."""

    def __init__(self, replies, common=()):
        self.rows = [{"id": f"fake#{i}", "reply": r, "similarity": 0.9 - 0.1 * i} for i, r in enumerate(replies)]
        self.common = frozenset(common)
        self.searches = 0

    def __len__(self):
        return len(self.rows)

    def nearest(self, vector, k):
        self.searches += 1
        return self.rows[:k]
