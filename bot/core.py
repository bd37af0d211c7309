"""``EmpatheticBot``: one object, one obvious method (``chat``), sessions kept apart.

One turn: screen the input -> read emotions -> update the session's emotion state -> render the
prompt (trimmed to the context window) -> stream the reply -> commit the turn to the session.
Nothing is committed until the reply is complete, so a failed or abandoned turn leaves the
session exactly as it was.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from .config import BotConfig
from .crisis import detect_crisis
from .emotion import EmotionClassifier, EmotionState, EmotionTracker
from .errors import BotError, GenerationError, InvalidInputError
from .prompting import PromptBook
from .safety import screen_input

log = logging.getLogger("bot")

DEFAULT_SESSION = "default"


_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*(?=\s|$)")


def trim_to_sentence(text: str) -> str:
    """Cut a reply that hit the token limit back to its last complete sentence, if it has one."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends else text


@dataclass
class Reply:
    """What one turn produced.

    ``text``: the reply. ``emotion``: the running emotion state after the user's message.
    ``safety``: flags raised while screening the message (see ``bot.safety``), and
    ``crisis:<category>`` when it may mean someone is in danger (see ``bot.crisis``).
    ``crisis``: that category, or None. When set, ``text`` ends with the help resources for it (and,
    with ``conversation.crisis_reply == "fixed"``, the default, begins with the written opening from
    ``prompts/crisis/opening.md`` instead of a generated reply).
    ``timings``: milliseconds per stage, token counts and tokens/s. ``guidance``: which guidance
    file shaped the reply. ``history_turns_used``: earlier turns that fit in the prompt.
    ``stopped``: "eos", "max_new_tokens" or "cancelled".
    """

    text: str
    emotion: EmotionState
    session_id: str
    turn: int
    safety: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    guidance: str = ""
    history_turns_used: int = 0
    stopped: str = "eos"
    crisis: str | None = None

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Session:
    messages: list[dict] = field(default_factory=list)  # alternating user / assistant
    tracker: EmotionTracker = field(default_factory=EmotionTracker)
    states: list[EmotionState] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class EmpatheticBot:
    """A chatbot that reads how the person feels and replies with empathy.

    >>> bot = EmpatheticBot()                       # embedded default models, CPU
    >>> reply = bot.chat("I failed my driving test again.", session_id="alice")
    >>> reply.text, reply.emotion.summary()

    ``reply_model`` and ``emotion_classifier`` may be passed in to share loaded weights between
    bots or to test with stand-ins; otherwise they are loaded from ``config.model``.
    """

    def __init__(self, config: BotConfig | None = None, *, reply_model=None, emotion_classifier=None):
        self.config = (config or BotConfig()).copy()
        self.config.validate()
        conv = self.config.conversation
        self.prompts = PromptBook(conv.prompts_dir, conv.persona_name)
        if reply_model is None:
            from .generation import ReplyModel

            reply_model = ReplyModel(self.config.model)
        self.reply_model = reply_model
        if emotion_classifier is None and self.config.model.emotion_classifier:
            # loaded on the reply model's thread, like all its later work (see ReplyModel._worker)
            emotion_classifier = self._on_model_thread(EmotionClassifier, self.config.model.emotion_classifier,
                                                       device=getattr(reply_model, "device", "cpu"))
        self.emotion_classifier = emotion_classifier
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()

    # -- sessions --------------------------------------------------------------------------------
    def _session(self, session_id: str) -> _Session:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError("session_id must be a non-empty string")
        with self._sessions_lock:
            return self._sessions.setdefault(session_id, _Session())

    def reset(self, session_id: str = DEFAULT_SESSION) -> None:
        """Forget a session's history and emotion state."""
        with self._sessions_lock:
            self._sessions.pop(session_id, None)

    def sessions(self) -> list[str]:
        with self._sessions_lock:
            return list(self._sessions)

    def history(self, session_id: str = DEFAULT_SESSION) -> list[dict]:
        """A copy of the session's messages (``{"role", "content"}``), oldest first."""
        with self._sessions_lock:
            s = self._sessions.get(session_id)
        return copy.deepcopy(s.messages) if s else []

    def emotion_state(self, session_id: str = DEFAULT_SESSION) -> EmotionState:
        with self._sessions_lock:
            s = self._sessions.get(session_id)
        if s and s.states:
            return s.states[-1]
        return self._empty_state()

    def trajectory(self, session_id: str = DEFAULT_SESSION) -> list[EmotionState]:
        """The emotion state after each user turn of the session, oldest first."""
        with self._sessions_lock:
            s = self._sessions.get(session_id)
        return list(s.states) if s else []

    def _empty_state(self) -> EmotionState:
        if self.emotion_classifier is None:
            return EmotionState.unavailable()
        return EmotionState(available=True)

    # -- turns -----------------------------------------------------------------------------------
    def chat(self, text: Any, session_id: str = DEFAULT_SESSION) -> Reply:
        """Answer one message in a session and return the whole ``Reply``."""
        reply = None
        for item in self.stream(text, session_id=session_id):
            if isinstance(item, Reply):
                reply = item
        assert reply is not None
        return reply

    def stream(self, text: Any, session_id: str = DEFAULT_SESSION,
               cancel: threading.Event | None = None) -> Iterator[str | Reply]:
        """Yield the reply as text chunks while it is written, then the ``Reply``.

        Raises ``InvalidInputError`` (before yielding anything) for input that cannot be answered.
        Setting ``cancel`` stops generation early; the partial reply is still committed.
        Abandoning the iterator before the ``Reply`` leaves the session unchanged.
        """
        session = self._session(session_id)
        with session.lock:  # one turn at a time per session; other sessions run freely
            tracker = copy.deepcopy(session.tracker)
            result = yield from self._turn(text, session.messages, tracker, session_id, cancel)
            reply, user_text = result
            session.messages.extend([{"role": "user", "content": user_text},
                                     {"role": "assistant", "content": reply.text}])
            session.tracker = tracker
            session.states.append(reply.emotion)
            keep = self.config.conversation.max_stored_turns
            if len(session.states) > keep:
                del session.messages[: len(session.messages) - 2 * keep]
                del session.states[: len(session.states) - keep]
        yield reply

    def respond(self, messages: list[dict], cancel: threading.Event | None = None) -> Iterator[str | Reply]:
        """Stateless turn: ``messages`` is the whole conversation, ending with the user's message.

        Used by the LangChain Runnable, where the caller keeps the history. The emotion state is
        rebuilt from the user messages, as a session would have built it.
        """
        history, tracker = self._replay(messages)
        reply, _ = yield from self._turn(messages[-1].get("content"), history, tracker, "", cancel)
        yield reply

    def prompt(self, messages: list[dict]) -> tuple[list[dict], EmotionState, str | None]:
        """What ``respond(messages)`` would send to the reply model: the rendered prompt, the emotion
        state and the crisis category (or None). For evaluation (perplexity of a reference reply)."""
        history, tracker = self._replay(messages)
        screened, signal, state = self._read(messages[-1].get("content"), tracker)
        crisis = signal.category if signal else None
        return self._fit_prompt(history, screened.text, state, crisis)[0], state, crisis

    def _replay(self, messages: list[dict]) -> tuple[list[dict], EmotionTracker]:
        """The earlier turns, and a tracker that has read the earlier user messages."""
        if not messages or messages[-1].get("role") != "user":
            raise InvalidInputError("the conversation must end with a user message")
        history = [m for m in messages[:-1] if m.get("role") in ("user", "assistant")]
        tracker = EmotionTracker()
        if self.emotion_classifier is not None:
            earlier = [m["content"] for m in history if m["role"] == "user"]
            for probs in (self._classify(earlier) if earlier else []):
                tracker.update(probs)
        return history, tracker

    def _read(self, text, tracker: EmotionTracker):
        """Screen a message, look for crisis language, and update the tracker with its emotions."""
        screened = screen_input(text, self.config.conversation.max_input_chars)
        signal = detect_crisis(screened.text)
        if self.emotion_classifier is not None:
            state = tracker.update(self._classify([screened.text])[0])
        else:
            tracker.turn += 1
            state = EmotionState.unavailable(turn=tracker.turn)
        return screened, signal, state

    def _turn(self, text, history: list[dict], tracker: EmotionTracker, session_id: str, cancel):
        t0 = time.perf_counter()
        screened, signal, state = self._read(text, tracker)
        crisis = signal.category if signal else None
        flags = screened.flags + ((signal.flag,) if signal else ())
        if signal:
            log.info("session %r: message flagged as possible crisis (%s)", session_id, crisis)
        t_emotion = time.perf_counter()
        fixed = bool(crisis) and self.config.conversation.crisis_reply == "fixed"  # a written reply: no prompt
        messages, kept = ([], 0) if fixed else self._fit_prompt(history, screened.text, state, crisis)
        t_prompt = time.perf_counter()
        if self.config.conversation.log_conversations:
            log.debug("session %r user: %s", session_id, screened.text)

        from .generation import StreamStats

        stats = StreamStats()
        parts: list[str] = []
        if fixed:
            # A small model can say the wrong thing here; a written reply cannot.
            parts.append(self.prompts.crisis_opening())
            yield parts[0]
        else:
            try:
                for chunk in self.reply_model.stream(messages, self.config.generation, stats, cancel):
                    parts.append(chunk)
                    yield chunk
            except (GenerationError, InvalidInputError):
                raise
            except Exception as exc:  # noqa: BLE001 - any model failure becomes one clear error
                raise GenerationError(f"the reply model failed: {exc}") from exc
        reply_text = "".join(parts).strip()
        if stats.stopped == "max_new_tokens":
            reply_text = trim_to_sentence(reply_text)
        if not reply_text:
            reply_text = "I'm here and listening. Could you tell me a little more about how you're feeling?"
        if crisis:
            resources = self.prompts.resources(crisis)
            yield "\n\n" + resources
            reply_text = f"{reply_text}\n\n{resources}"
        t_end = time.perf_counter()
        gen_s = stats.generate_s or (t_end - t_prompt)
        timings = {
            "emotion_ms": (t_emotion - t0) * 1e3,  # screening, crisis check and emotion reading
            "prompt_ms": (t_prompt - t_emotion) * 1e3,
            "first_token_ms": (stats.first_token_s * 1e3) if stats.first_token_s is not None else None,
            "generate_ms": gen_s * 1e3,
            "total_ms": (t_end - t0) * 1e3,
            "prompt_tokens": stats.prompt_tokens,
            "new_tokens": stats.new_tokens,
            "tokens_per_s": stats.new_tokens / gen_s if gen_s > 0 else 0.0,
        }
        timings = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in timings.items()}
        if self.config.conversation.log_conversations:
            log.debug("session %r bot: %s", session_id, reply_text)
        reply = Reply(
            text=reply_text, emotion=state, session_id=session_id, turn=tracker.turn,
            safety=flags, timings=timings, guidance=self.prompts.guidance_key(state, crisis),
            history_turns_used=kept, stopped=stats.stopped, crisis=crisis,
        )
        return reply, screened.text

    def _fit_prompt(self, history: list[dict], text: str, state: EmotionState,
                    crisis: str | None = None) -> tuple[list[dict], int]:
        """The prompt with as many recent whole turns as fit the token budget (oldest dropped first)."""
        window = self.reply_model.context_window
        budget = min(self.config.conversation.context_tokens or window,
                     window - self.config.generation.max_new_tokens)
        n_turns = len(history) // 2
        history = history[len(history) - 2 * n_turns:]  # whole user/assistant pairs only

        def build(drop: int) -> list[dict]:
            return self.prompts.render(history[2 * drop:], text, state, crisis)

        full = build(0)
        if self.reply_model.count_tokens(full) <= budget:
            return full, n_turns
        bare = build(n_turns)
        bare_tokens = self.reply_model.count_tokens(bare)
        if bare_tokens > budget:
            raise InvalidInputError(
                f"The message is too long for the model's context ({bare_tokens} tokens with "
                f"the system prompt; the budget is {budget}). Please shorten it."
            )
        # the fewest dropped turns that fit lies in [lo, hi]; ``best`` is the prompt for ``hi``
        lo, hi, best = 1, n_turns, bare
        while lo < hi:
            mid = (lo + hi) // 2
            candidate = build(mid)
            if self.reply_model.count_tokens(candidate) <= budget:
                hi, best = mid, candidate
            else:
                lo = mid + 1
        return best, n_turns - hi

    def explain(self, text: Any = None, session_id: str = DEFAULT_SESSION,
                top_words: int = 5) -> dict[str, list[tuple[str, float]]]:
        """Why the classifier read a message as it did: for each top emotion, the words that pushed it
        most (leave-one-out; see ``EmotionClassifier.explain``). ``text`` defaults to the session's
        last user message."""
        if self.emotion_classifier is None:
            raise BotError(EmotionState.unavailable().reason)
        if text is None:
            users = [m["content"] for m in self.history(session_id) if m["role"] == "user"]
            if not users:
                raise InvalidInputError("There is no message to explain yet.")
            text = users[-1]
        screened = screen_input(text, self.config.conversation.max_input_chars)
        return self._on_model_thread(self.emotion_classifier.explain, screened.text, top_words=top_words)

    def _on_model_thread(self, fn, *args, **kwargs):
        """Classifier work runs on the reply model's thread when it has one (see ReplyModel._worker)."""
        call = getattr(self.reply_model, "call", None)
        return call(fn, *args, **kwargs) if call is not None else fn(*args, **kwargs)

    def _classify(self, texts: list[str]) -> list[dict[str, float]]:
        return self._on_model_thread(self.emotion_classifier.predict, texts)

    # -- integration -------------------------------------------------------------------------------
    def as_runnable(self, default_session_id: str = DEFAULT_SESSION):
        """This bot as a langchain-core ``Runnable`` (see ``bot.lc``)."""
        from .lc import EmpatheticRunnable

        return EmpatheticRunnable(bot=self, default_session_id=default_session_id)

    def info(self) -> dict[str, Any]:
        describe = getattr(self.reply_model, "describe", None)
        return {
            "reply_model": describe() if describe else repr(self.reply_model),
            "emotion_classifier": (getattr(getattr(self.emotion_classifier, "resolved", None), "description",
                                           repr(self.emotion_classifier))
                                   if self.emotion_classifier is not None else None),
            "emotion_tracking": "on" if self.emotion_classifier is not None else EmotionState.unavailable().reason,
            "prompts": str(self.prompts.dir),
            "generation": asdict(self.config.generation),
            "conversation": asdict(self.config.conversation),
        }
