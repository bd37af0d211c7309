"""Render the prompt for one turn from the templates in ``prompts/``.

The system text is a langchain-core ``ChatPromptTemplate``; the emotion state picks the guidance
file. The result is a list of ``{"role", "content"}`` messages that the reply model turns into
tokens with its tokenizer's own chat template.
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path

from .emotion import LABEL_TO_EKMAN, EmotionState
from .errors import BotError

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


class PromptError(BotError):
    """The prompt templates are missing or malformed."""


def _default_prompts_dir() -> Path:
    return Path(str(resources.files("prompts")))


_WRITTEN_DEFAULTS = {
    "greeting": ["Hi, I'm {name}. I'm glad you stopped by. How are you feeling today?"],
    "redirect": ["I can't share or change how I'm set up, but I'm here to listen. How are you feeling right now?"],
    "honest": ["I'm an AI, not a person or a therapist, but I'm here and I'm listening. What's on your mind?"],
    "fallback": ["I'm here with you, and I want to understand. Could you tell me a little more about what's been "
                 "happening and how it's making you feel?"],
    "harmful": ["I can't help with that, because it could hurt you or someone else. I'm still here, though, and I'd "
                "like to understand what's going on. What has been happening that brought you to this?"],
    "clinical": ["I can't diagnose anything or advise on medication: I'm an AI, not a clinician. A doctor can look at "
                 "what you're going through properly, and a pharmacist can answer questions about a dose, even when "
                 "your own doctor is away. I'm glad to listen in the meantime. How has all this been for you?"],
    "secrecy": ["I can't promise that. This conversation may be kept by the people who run this service, and if you or "
                "someone else is in danger, I'll want to help you reach people who can step in. I won't judge you, and "
                "you can share as much or as little as feels right. What's on your mind?"],
    "put_down": ["I won't say that. I don't believe it, and I don't think hearing it would help you. It sounds like "
                 "you're being really hard on yourself right now. What's been happening?"],
    "about": ["I'm an AI listener. I can't fix things or give professional advice, but I can listen, help you put "
              "into words what you're feeling, and think a problem through with you, one step at a time. What's on "
              "your mind?"],
    "feelings": ["I'm an AI, so I don't have feelings the way you do. But I do pay close attention to how you're "
                 "feeling and what you tell me, and I'd like to understand. What's going on for you?"],
    "memory": ["I remember what we've said in this conversation. Whether it is kept after it ends depends on how "
               "this service is run, and you can ask for it to be deleted. What would you like to talk about?"],
    "joke": ["I'm better at listening than at jokes, but here's one: my phone's autocorrect and I have agreed to "
             "disagree. It just keeps changing what that means. How are you doing today?"],
    "no_words": ["I'm here. If you'd like, tell me in a few words what's going on, or how you're feeling right now."],
}


class PromptBook:
    """The persona template and per-emotion guidance, read once from a folder."""

    def __init__(self, prompts_dir: str | Path | None = None, persona_name: str = "Sol"):
        self.dir = Path(prompts_dir).expanduser() if prompts_dir else _default_prompts_dir()
        system_file = self.dir / "system.md"
        if not system_file.is_file():
            raise PromptError(f"prompt folder {self.dir} has no system.md; copy the project's prompts/ folder and edit it")
        self.system_template = system_file.read_text(encoding="utf-8").strip()
        self._written: dict[str, list[str]] = {}  # written replies, read on first use
        # How the person's message is shown to the model; "{state_tag} {input}" puts the compact state first.
        user_file = self.dir / "user.md"
        self.user_template = user_file.read_text(encoding="utf-8").strip() if user_file.is_file() else "{input}"
        self.guidance: dict[str, str] = {}
        guidance_dir = self.dir / "guidance"
        if guidance_dir.is_dir():
            for f in sorted(guidance_dir.glob("*.md")):
                self.guidance[f.stem] = f.read_text(encoding="utf-8").strip()
        # What to tell someone who may be in danger, per crisis category (see bot/crisis.py).
        self.crisis_resources: dict[str, str] = {}
        crisis_dir = self.dir / "crisis"
        if crisis_dir.is_dir():
            for f in sorted(crisis_dir.glob("*.md")):
                self.crisis_resources[f.stem] = f.read_text(encoding="utf-8").strip()
        self.persona_name = persona_name
        self._template  # parse now so a broken template fails at start-up, not mid-conversation

    @cached_property
    def _template(self):
        from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

        try:
            return ChatPromptTemplate.from_messages(
                [("system", self.system_template), MessagesPlaceholder("history"), ("human", self.user_template)]
            )
        except Exception as exc:  # noqa: BLE001
            raise PromptError(f"{self.dir / 'system.md'} is not a valid template: {exc}") from exc

    def guidance_key(self, state: EmotionState, crisis: str | None = None) -> str:
        """Which guidance file applies: ``crisis`` when the message was flagged, else the top emotion's
        own, then its Ekman group, then default."""
        if crisis and "crisis" in self.guidance:
            return "crisis"
        if not state.available:
            return "unavailable" if "unavailable" in self.guidance else "default"
        label = state.primary
        for key in (label, LABEL_TO_EKMAN.get(label or "")):
            if key and key in self.guidance:
                return key
        return "default"

    def system_text(self, state: EmotionState) -> str:
        return self.render([], "", state)[0]["content"]

    def crisis_opening(self, followup: bool = False) -> str:
        """The written first words of a reply to a flagged message (``prompts/crisis/opening.md``), or to
        a further flagged message while the session is already at risk (``prompts/crisis/followup.md``)."""
        if followup and self.crisis_resources.get("followup"):
            return self.crisis_resources["followup"]
        return self.crisis_resources.get("opening") or (
            "I'm really glad you told me, and I'm taking what you said seriously. Are you safe right now?")

    def written(self, name: str) -> list[str]:
        """The written replies in ``written/<name>.md`` (one per line; ``{name}`` is the persona's name),
        or the built-in ones when the prompts folder has none; each file is read once, like the rest of the
        book (the redirect is looked up every turn)."""
        return self._lines("written", name, _WRITTEN_DEFAULTS.get(name, _WRITTEN_DEFAULTS["fallback"]))

    def openers(self, family: str) -> list[str]:
        """The openers for one family (``openers/<family>.md``, one per line; see ``bot.openers``), or none
        where the prompts folder has no such file."""
        return self._lines("openers", family, [])

    def _lines(self, folder: str, name: str, defaults: list[str]) -> list[str]:
        """The non-empty lines of ``<folder>/<name>.md`` (``defaults`` when there are none), with the
        persona's name for ``{name}``; read once."""
        key = f"{folder}/{name}"
        if key not in self._written:
            path = self.dir / folder / f"{name}.md"
            lines = []
            if path.is_file():
                lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            self._written[key] = [ln.replace("{name}", self.persona_name) for ln in lines or defaults]
        return list(self._written[key])

    def check_in(self, crisis: str, again: bool = False) -> str:
        """The written question for a message that may mean danger (``prompts/crisis/check_in_<category>.md``);
        ``again``: the question once more, for an answer that did not clearly answer it
        (``check_in_again_<category>.md``, else the first question)."""
        if again and self.crisis_resources.get(f"check_in_again_{crisis}"):
            return self.crisis_resources[f"check_in_again_{crisis}"]
        return self.crisis_resources.get(f"check_in_{crisis}") or (
            "That sounds like a lot to carry, and I want to make sure you're okay. Are you in any danger right now?")

    def resources(self, crisis: str) -> str:
        """The help text for a crisis category; a generic line where the prompts folder has none."""
        return self.crisis_resources.get(crisis) or (
            "If you or someone else is in danger, please call your local emergency number now "
            "(911 in the US and Canada, 999 in the UK, 112 in the EU).")

    def render(self, history: list[Message], user_text: str, state: EmotionState,
               crisis: str | None = None, stateless: bool = False) -> list[Message]:
        """Messages for one turn: system (persona + guidance), earlier turns, the new user message.
        ``stateless``: the same prompt without the state (no state line, guidance or tag): the
        unconditioned prompt of guidance at decoding (``GenerationConfig.guidance``)."""
        conditioned = not stateless
        emotion = f"The person seems to feel: {state.summary()}." if conditioned and state.available and state.top else ""
        guidance = self.guidance.get(self.guidance_key(state, crisis), "") if conditioned else ""
        tag = state.tag() if conditioned else ""
        values = {
            "name": self.persona_name,
            "guidance": guidance,
            "emotion": emotion,
            "history": [(m["role"] if m["role"] != "user" else "human", m["content"]) for m in history],
            "input": user_text,
            "state_tag": tag,
        }
        try:
            lc_messages = self._template.format_messages(**values)
        except KeyError as exc:
            raise PromptError(
                f"{self.dir / 'system.md'} uses the unknown variable {exc}; known: name, guidance, emotion, state_tag (and input in user.md)"
            ) from exc
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        out = [{"role": roles[m.type], "content": m.content} for m in lc_messages]
        out[0]["content"] = "\n".join(line for line in out[0]["content"].splitlines() if line.strip())
        out[-1]["content"] = out[-1]["content"].strip()  # an empty state tag leaves no stray space
        return out
