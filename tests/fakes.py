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


class KeywordClassifier:
    """A deterministic emotion 'classifier' over GoEmotions labels, keyed on words."""

    labels = ("sadness", "anger", "joy", "fear", "neutral")
    KEYWORDS = {"sad": "sadness", "lost": "sadness", "died": "sadness", "angry": "anger", "furious": "anger", "happy": "joy",
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
