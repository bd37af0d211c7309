"""``EmpatheticBot``: one object, one obvious method (``chat``), sessions kept apart.

One turn: screen the input -> read emotions -> update the session's emotion state -> render the
prompt (trimmed to the context window) -> stream the reply -> commit the turn to the session.
Nothing is committed until the reply is complete, so a failed or abandoned turn leaves the
session exactly as it was.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

from .config import BotConfig
from .crisis_model import CrisisDetector, CrisisReading
from .emotion import EmotionClassifier, EmotionScore, EmotionState, EmotionTracker
from .errors import (BotError, ConversationConflictError, GenerationError, InvalidInputError, SessionStoreError,
                     TurnTimeoutError)
from .goodnews import good_news as good_news_told, overcome_with_it
from .intent import continues_an_attack, is_greeting, is_instruction_attack, written_answer
from .openers import DILEMMA, UNCLEAR, family as opener_family, opened_count, pick as pick_openers
from .prompting import PromptBook
from .reply import DEFAULT_SESSION, Reply  # noqa: F401 - Reply is part of this module's API
from .replycheck import (Candidate, acknowledges, asks_a_question, celebrates, choose, offers_sympathy, puts_self_down,
                         reply_problems, tells_bad_news, tells_of_a_death)
from .safety import screen_input
from .store import open_store

log = logging.getLogger("bot")



_SENTENCE_END = re.compile(r"[.!?…。！？][\"'”’)\]]*(?=\s|$)")


def trim_to_sentence(text: str) -> str:
    """Cut a reply that hit the token limit back to its last complete sentence, if it has one."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends else text


@dataclass
class _Session:
    messages: list[dict] = field(default_factory=list)  # alternating user / assistant
    tracker: EmotionTracker = field(default_factory=EmotionTracker)
    states: list[EmotionState] = field(default_factory=list)
    risk: dict | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    used: float = field(default_factory=time.time)
    revision: int = 0  # the store's revision this copy was loaded or saved as (0: not stored)

    def snapshot(self) -> dict:
        """Everything a restored session needs to continue exactly as it was (JSON-able)."""
        t = self.tracker
        return {"version": 1, "messages": copy.deepcopy(self.messages),
                "tracker": {"alpha": t.alpha, "min_confidence": t.min_confidence, "trend_delta": t.trend_delta,
                            "top_k": t.top_k, "turn": t.turn, "running": dict(t.running)},
                "states": [s.to_dict() for s in self.states], "risk": copy.deepcopy(self.risk)}

    @classmethod
    def restore(cls, data: dict) -> "_Session":
        """The session a snapshot describes; ``InvalidInputError`` for anything malformed."""
        try:
            if data.get("version") != 1:
                raise ValueError(f"unknown snapshot version {data.get('version')!r}")
            messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in data["messages"]]
            if any(m["role"] not in ("user", "assistant") for m in messages) or len(messages) % 2:
                raise ValueError("messages must alternate user / assistant turns")
            t = data["tracker"]
            tracker = EmotionTracker(float(t["alpha"]), float(t["min_confidence"]), float(t["trend_delta"]),
                                     int(t["top_k"]))
            tracker.turn = int(t["turn"])
            tracker.running = {str(k): float(v) for k, v in t["running"].items()}
            states = [EmotionState(**{**st, "top": tuple(EmotionScore(**x) for x in st["top"])}) for st in data["states"]]
            risk = data.get("risk")
            if risk is not None and not isinstance(risk, dict):
                raise ValueError("risk must be an object or null")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"not a conversation this bot can restore: {exc}") from exc
        return cls(messages=messages, tracker=tracker, states=states, risk=risk)


class _TurnClock(threading.Event):
    """The cancel event handed to the reply model in a turn with a time limit: set once the caller's
    own ``cancel`` is set or the limit has run out. The models poll ``is_set()`` between tokens, so no
    timer thread is needed. The limit covers the work up to the chosen reply (reading, generation,
    checks, ranking), not its delivery to a slow reader: ``stop()`` ends it when the reply is ready."""

    def __init__(self, cancel: threading.Event | None, seconds: float):
        super().__init__()
        self.cancel = cancel
        self.seconds = seconds
        self.deadline: float | None = time.monotonic() + seconds

    def is_set(self) -> bool:
        return (super().is_set() or (self.cancel is not None and self.cancel.is_set())
                or (self.deadline is not None and time.monotonic() >= self.deadline))

    def stop(self) -> None:
        """The reply is ready: ``TurnTimeoutError`` if the limit ran out on the way, else the clock stops."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise TurnTimeoutError(f"the reply took longer than the turn's time limit ({self.seconds:g} s) and was "
                                   "stopped; the conversation is unchanged: please send the message again")
        self.deadline = None


class _GuardedStore:
    """A session store whose failures (the database down, a full disk, a broken file) come out as
    ``SessionStoreError``; the bot's own errors (a conflict between processes) pass unchanged."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def guarded(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            except BotError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.error("the session store failed in %s: %s: %s", name, type(exc).__name__, exc)
                raise SessionStoreError(f"the conversation store is not available right now "
                                        f"({type(exc).__name__}); please try again shortly") from exc

        return guarded


class _FairGate:
    """One turn's model work at a time, in the order the turns arrived (a plain lock lets a late turn
    overtake, so under load some people wait many rounds while others wait none). A turn whose
    ``cancel`` is set while it waits (its time limit ran out) stops waiting and runs at once: the
    models see the same ``cancel`` and stop at the first token."""

    def __init__(self):
        self._cond = threading.Condition()
        self._line: collections.deque = collections.deque()

    @contextlib.contextmanager
    def hold(self, cancel: threading.Event | None = None):
        me = object()
        with self._cond:
            self._line.append(me)
            while self._line[0] is not me and not (cancel is not None and cancel.is_set()):
                self._cond.wait(0.05 if cancel is not None else None)
        try:
            yield
        finally:
            with self._cond:
                self._line.remove(me)
                self._cond.notify_all()

    def waiting(self) -> int:
        with self._cond:
            return len(self._line)


def _timed(turn: Iterator, clock: _TurnClock):
    """``yield from turn``, stopping ``clock`` before the first piece of the reply goes out (or at the
    end of a turn that yields none), so a turn past its limit never shows part of a reply."""
    try:
        while True:
            try:
                item = next(turn)
            except StopIteration as done:
                clock.stop()
                return done.value
            clock.stop()
            yield item
    finally:
        turn.close()


def _storable(session_id: object) -> bool:
    """Whether a session id can be a key in a store: text that encodes as UTF-8 (a JSON body can carry
    lone surrogates, which SQLite cannot bind)."""
    if not isinstance(session_id, str):
        return False
    try:
        session_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# The positive labels that mean gladness. GoEmotions' positive group also holds approval ("Yes"),
# caring ("I need some support"), desire ("I just want things to improve") and optimism, which the
# classifier gives to people asking for help as often as to good news.
GLAD_LABELS = ("joy", "excitement", "pride", "relief", "gratitude", "amusement", "admiration", "love")


def gladness(state: EmotionState) -> float:
    """The summed probability of the glad labels in the person's latest message."""
    return sum(state.last_turn.get(label, 0.0) for label in GLAD_LABELS)


# A message with this much negative emotion is not glad news (``is_glad``) however much gladness it also
# shows: the glad labels include love and gratitude, which people voice in the middle of hardship ("I love
# her but I am so tired", a carer: love 0.5, negative 0.29). ``glad_now``, the weaker lean, has no such cap:
# "I got the job!! a bit nervous but so happy" after a loss still leans glad. Chosen on the ordinary dev conversations (7 of the 24
# turns read as glad there were such, none of them good news); on 600 first turns of EmpatheticDialogues
# valid it drops 8 of 123 glad readings, precision against the dataset's emotion label 0.77 either way.
GLAD_NEGATIVE_BELOW = 0.15
# Good news read from the words (``bot.goodnews``) is set aside when the message reads this negative
# ("I got the job but I'm dreading telling my team" is not plain good news), and always when it reads as
# distressed (more negative than positive, at least 0.3). Relief names what was feared ("out of ICU" reads
# 0.46 negative), so it may read more negative where the positive outweighs it.
GOOD_NEWS_NEGATIVE_BELOW = {"joy": 0.3, "relief": 0.5}


def plain_good_news(conversation: list[dict], state: EmotionState) -> str | None:
    """The good news the person's latest message tells in plain words ("joy" or "relief", see
    ``bot.goodnews``), unless the message also tells of a setback or reads too negative (tears, shaking or
    tiredness beside the news and nothing else sad do not count: ``overcome_with_it``), or the
    person's last turns tell of a death."""
    from .emotion import sentiment_mass

    if not state.available or tells_bad_news(conversation, turns=1) or tells_of_a_death(conversation):
        return None  # the words alone are not trusted: without an emotion reading, no good news is read
    kind = good_news_told(conversation)
    if kind == "joy" and overcome_with_it(conversation):
        return kind  # "I got the job!!! I can't stop crying": the classifier reads the tears as sadness
    if kind and (is_distressed(state)
                 or sentiment_mass(state.last_turn).get("negative", 0.0) >= GOOD_NEWS_NEGATIVE_BELOW[kind]):
        return None
    return kind


def _leans_glad(state: EmotionState, floor: float, negative_below: float = 1.0) -> bool:
    """Gladness in the latest message of at least ``floor``, more than twice the negative, and the negative
    under ``negative_below``."""
    from .emotion import sentiment_mass

    if not state.available:
        return False
    glad = gladness(state)
    negative = sentiment_mass(state.last_turn).get("negative", 0.0)
    return glad >= floor and glad > 2 * negative and negative < negative_below


def is_glad(state: EmotionState) -> bool:
    """Whether the person's latest message reads as glad news: joy-like emotion outweighs the negative twice,
    and the negative is under ``GLAD_NEGATIVE_BELOW``."""
    return _leans_glad(state, 0.5, GLAD_NEGATIVE_BELOW)


def glad_now(state: EmotionState) -> bool:
    """Whether the latest message leans glad (gladness at least 0.25 and twice the negative): weaker than
    ``is_glad``, enough to say that a setback told earlier is not what this message is about."""
    return _leans_glad(state, 0.25)


# Under this much gladness a message has no joy to share ("Okay I guess.", "How am I going to catch up on
# my work?": 0.00; "My daughter graduated high school!" reads 0.17). Chosen on 300 validation turns.
JOYLESS_BELOW = 0.1


def is_joyless(state: EmotionState) -> bool:
    """Whether the person's latest message shows no gladness at all (nothing to congratulate)."""
    return state.available and gladness(state) < JOYLESS_BELOW


def is_distressed(state: EmotionState) -> bool:
    """Whether the person's latest message reads as sad, afraid or angry more than glad."""
    from .emotion import sentiment_mass

    if not state.available:
        return False
    mass = sentiment_mass(state.last_turn)
    return mass.get("negative", 0.0) >= 0.3 and mass.get("negative", 0.0) > mass.get("positive", 0.0)


_AFFIRM = re.compile(
    r"^\W*(?:yes|yeah|yea|yep|yup|ya|y|ok yes|i am|i do|i have|i guess|i think so|kind of|kinda|sort of|sometimes|"
    r"maybe|a little|a bit|honestly,? yes|honestly,? yeah|probably|often|every day|all the time|s[ií]|oui|ja|sim)\b",
    re.IGNORECASE)
_DENY = re.compile(r"^\W*(?:no|nope|nah|not really|not at all|i'?m not|i am not|never|of course not|god no|no way|"
                   r"i'?m (?:ok|okay|fine|safe)|i am (?:ok|okay|fine|safe))\b", re.IGNORECASE)


def is_affirmative(text: str) -> bool:
    """A yes to "are you having thoughts of...?" ("yes", "kind of", "sometimes", "i think so")."""
    return bool(_AFFIRM.match(text)) and not _DENY.match(text)


# A yes followed by this many more words, none of which the detector reads as danger, may not answer the
# question at all: "yeah. and ofc i was late for the meeting and my manager made a little comment..."
# goes on with the story the question interrupted. The bot asks again rather than guess either way.
YES_THEN_STORY_WORDS = 10


_BARE_YES = re.compile(r"^\W*(?:yes|yeah|yea|yep|yup|ya|ok yes|ok|okay|sure)\b", re.IGNORECASE)


def yes_then_story(text: str) -> bool:
    """A bare yes-word ("yeah", not "I have been thinking about it...") that opens a longer message (see
    ``YES_THEN_STORY_WORDS``)."""
    m = _BARE_YES.match(text)
    return bool(m) and not _DENY.match(text) and len(re.findall(r"[\w']+", text[m.end():])) >= YES_THEN_STORY_WORDS


def is_denial(text: str) -> bool:
    return bool(_DENY.match(text))


def _reason(c: Candidate, n: int) -> str:
    if n == 1:
        return "the only candidate" + (f" (with: {', '.join(c.problems)})" if c.problems else "")
    why = "no problems found" if not c.problems else f"fewest problems ({', '.join(c.problems)})"
    if c.score is None:
        score = ""
    elif c.fit is not None and abs(c.score - c.fit) > 1e-9:  # the emotion fit or the sympathy bonus added to it
        score = f", score {c.score:.2f} (fit {c.fit:.2f})"
    else:
        score = f", fit {c.score:.2f}"
    source = {"retrieved": "human reply from the pool (to a conversation like this one)",
              "opener": "written opener (the emotion state's line, whole)"}.get(c.source, c.source)
    if c.opener and c.source != "opener":
        source += f" (after the written opener {c.opener!r})"
    return f"{source}, candidate of {n}: {why}{score}"


@dataclass(frozen=True)
class CrisisEvent:
    """What ``on_crisis`` receives when a session's risk rises: a possible crisis the bot asks about
    (``level`` "check_in"), a crisis (``level`` "alarm": a first one, a new category, a yes to the
    check-in question, or ``concern`` becoming ``imminent``)."""

    session_id: str
    category: str
    degree: str
    source: str
    message: str
    turn: int
    level: str = "alarm"


class EmpatheticBot:
    """A chatbot that reads how the person feels and replies with empathy.

    >>> bot = EmpatheticBot()                       # embedded default models, CPU
    >>> reply = bot.chat("I failed my driving test again.", session_id="alice")
    >>> reply.text, reply.emotion.summary()

    ``reply_model``, ``emotion_classifier``, ``ranker`` and ``crisis_detector`` may be passed in to
    share loaded weights between bots or to test with stand-ins; otherwise they are loaded from
    ``config.model``.

    ``on_crisis``: called with a ``CrisisEvent`` each time a session's risk rises, so a support desk
    can hand the conversation to a person. It runs on the turn's thread once the turn is kept (saved,
    when there is a store), just before the ``Reply`` is handed out; a turn stopped by its time limit
    calls nothing. An exception in it is logged and never breaks the reply.

    ``start_times``: seconds each part took to load when the bot started (reply model, emotion
    classifier, crisis detector, ranker), for ``empathetic-bot bench``.
    """

    def __init__(self, config: BotConfig | None = None, *, reply_model=None, emotion_classifier=None, ranker=None,
                 crisis_detector: CrisisDetector | None = None, on_crisis=None, store=None, reply_pool=None):
        self.config = (config or BotConfig()).copy()
        self.config.validate()
        conv = self.config.conversation
        self.prompts = PromptBook(conv.prompts_dir, conv.persona_name)
        injected_model = reply_model
        self.start_times: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(part: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            self.start_times[part] = round(now - clock, 3)
            clock = now

        if self.config.model.threads:
            import torch

            torch.set_num_threads(self.config.model.threads)  # the classifiers' (and transformers') threads
        if reply_model is None:
            from .backends import load_reply_model

            reply_model = load_reply_model(self.config)
        self.reply_model = reply_model
        lap("reply_model")
        describe = getattr(reply_model, "describe", None)
        self.backend = str((describe() if describe else {}).get("backend", type(reply_model).__name__))
        if emotion_classifier is None and self.config.model.emotion_classifier:
            # loaded on the reply model's thread, like all its later work (see ReplyModel._worker)
            emotion_classifier = self._on_model_thread(EmotionClassifier, self.config.model.emotion_classifier,
                                                       device=getattr(reply_model, "device", "cpu"),
                                                       cache_dir=self.config.model.cache_dir)
        self.emotion_classifier = emotion_classifier
        lap("emotion_classifier")
        # The ranker loads with the models the bot loads itself; beside a model passed in (a shared one,
        # or a stand-in in tests) it loads when a turn first has several candidates to rank.
        self._ranker, self._ranker_lock = ranker, threading.Lock()
        self._reply_pool, self._pool_opened, self._pool_lock = reply_pool, reply_pool is not None, threading.Lock()
        if crisis_detector is None:
            classifier = None
            if self.config.model.crisis_detector:
                from .crisis_model import CrisisClassifier

                classifier = self._on_model_thread(CrisisClassifier, self.config.model.crisis_detector,
                                                   device=getattr(reply_model, "device", "cpu"),
                                                   cache_dir=self.config.model.cache_dir)
            crisis_detector = CrisisDetector(classifier)
        self.crisis_detector = crisis_detector
        self.on_crisis = on_crisis
        lap("crisis_detector")
        if ranker is None and self.config.model.ranker and injected_model is None:
            self.ranker  # noqa: B018 - load now
            lap("ranker")
            if self.config.model.reply_pool == "auto":  # the cached pool (0.5 s) is read while the bot starts
                threading.Thread(target=lambda: self.reply_pool, name="reply-pool").start()
            else:
                self.reply_pool  # noqa: B018 - a pool named in the config must be readable: fail at start
        self._sessions: dict[str, _Session] = {}  # live sessions, least recently used first
        self._sessions_lock = threading.Lock()
        self._gate = _FairGate()
        # "memory" keeps nothing beyond the live sessions (a MemoryStore would hold a second copy of each)
        self.store = store if store is not None else (
            open_store(conv.store) if conv.store and conv.store != "memory" else None)
        # every call into the store goes through this: a database that fails (down, disk full) raises
        # SessionStoreError, which callers and the service report as "try again", never a crash
        self._db = _GuardedStore(self.store) if self.store is not None else None
        self._last_expiry = 0.0
        lap("sessions_and_store")
        if injected_model is None:  # the first turn at the speed of the later ones, while the person types
            threading.Thread(target=self._warm_up, name="warm-up").start()  # joined at exit: never cut mid-call

    @property
    def ranker(self):
        """The response ranker (``config.model.ranker``), or None when ranking is off."""
        with self._ranker_lock:
            if self._ranker is None and self.config.model.ranker:
                from .ranker import ResponseRanker

                self._ranker = self._on_model_thread(ResponseRanker, self.config.model.ranker,
                                                     device=getattr(self.reply_model, "device", "cpu"),
                                                     cache_dir=self.config.model.cache_dir,
                                                     cross=self.config.model.cross_ranker)
            return self._ranker

    def _warm_up(self) -> None:
        """One tiny turn's work, in the background after the start: llama.cpp and PyTorch allocate and
        tune on their first call, which would otherwise slow the person's first turn (about 0.4 s on 2
        cores). A turn that starts meanwhile waits behind it on the model's thread."""
        try:
            warm = getattr(self.reply_model, "warm_up", None)
            if warm is not None:
                warm()
            if self.emotion_classifier is not None:
                self._classify(["Hello, how are you today?"])
            if self._ranker is not None:
                self._on_model_thread(self._ranker.score, [{"role": "user", "content": "Hello"}], ["Hi there."])
        except Exception:  # noqa: BLE001 - only a warm-up: the first turn is merely slower without it
            log.debug("warm-up failed", exc_info=True)

    @property
    def reply_pool(self):
        """The pool of human replies (``config.model.reply_pool``, see ``bot.retrieval``), or None."""
        with self._pool_lock:
            if not self._pool_opened:
                self._reply_pool, self._pool_opened = self._open_pool(), True
            return self._reply_pool

    def _open_pool(self):
        spec = self.config.model.reply_pool
        ranker = self.ranker
        if getattr(ranker, "resolved", None) is None:  # no ranker, or a stand-in: nothing indexes a pool
            return None
        from .retrieval import open_pool

        try:
            return open_pool(spec, ranker, self.config.model.cache_dir)
        except BotError as exc:
            if spec != "auto":  # a pool asked for by name must work
                raise
            log.warning("the cached reply pool was not used: %s", exc)  # a damaged cache: go on without it
            return None

    # -- sessions --------------------------------------------------------------------------------
    def _peek(self, session_id: str, refresh: bool = True) -> _Session | None:
        """The session if it exists (live, or restored from the store), without creating it.

        Several processes may share one store, so with ``refresh`` a live copy is first brought up to
        the store's newest save (see ``_refresh``; skipped while a turn runs in it, which does that
        itself). A copy whose stored session was deleted elsewhere is dropped: there is none."""
        with self._sessions_lock:
            s = self._sessions.get(session_id)
        if self._db is None or not _storable(session_id):
            return s
        if s is not None:
            revision = getattr(self._db, "revision", None)
            # the lock only when there is something to reload, so a read never makes a turn look busy
            if (refresh and revision is not None and revision(session_id) != s.revision
                    and s.lock.acquire(blocking=False)):
                try:
                    kept = self._refresh(session_id, s)
                finally:
                    s.lock.release()
                if not kept:
                    with self._sessions_lock:
                        if self._sessions.get(session_id) is s and not s.lock.locked():
                            del self._sessions[session_id]
                    return None
            return s
        found = self._stored(session_id)
        if found is None:
            return None
        restored = _Session.restore(found[0])
        restored.revision = found[1]
        with self._sessions_lock:
            return self._sessions.setdefault(session_id, restored)

    def _stored(self, session_id: str) -> tuple[dict, int] | None:
        """The stored snapshot and its revision (0 from a store that keeps none), or None."""
        read = getattr(self._db, "read", None)
        if read is not None:
            return read(session_id)
        data = self._db.load(session_id)
        return None if data is None else (data, 0)

    def _refresh(self, session_id: str, s: _Session) -> bool:
        """Bring a live session (its lock held) up to the store's newest save: another process sharing
        the store may have answered turns in it, or deleted it, since this copy was loaded or saved.
        Costs one indexed read when nothing changed. Returns False when the store no longer holds a
        session this copy was saved as (deleted or expired elsewhere); the copy is then emptied, and a
        turn in it begins a new conversation, as it would in the other process."""
        revision = getattr(self._db, "revision", None)
        if revision is None or revision(session_id) == s.revision:
            return True
        found = self._stored(session_id)
        fresh, rev = (_Session.restore(found[0]), found[1]) if found is not None else (_Session(), 0)
        was_stored = s.revision > 0
        s.messages, s.tracker, s.states, s.risk, s.revision = (fresh.messages, fresh.tracker, fresh.states,
                                                               fresh.risk, rev)
        return found is not None or not was_stored

    def _save(self, session_id: str, s: _Session) -> None:
        """Write the session (its lock held) to the store. A store that keeps revisions writes it only
        if nothing was saved there since this copy was loaded (``ConversationConflictError`` else)."""
        if getattr(self._db, "revision", None) is None:
            self._db.save(session_id, s.snapshot())
        else:
            s.revision = self._db.save(session_id, s.snapshot(), expected=s.revision)

    def _session(self, session_id: str) -> _Session:
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInputError("session_id must be a non-empty string")
        if len(session_id) > 200:
            raise InvalidInputError("session_id must be at most 200 characters")
        if not _storable(session_id):
            raise InvalidInputError("session_id must be valid Unicode text (it holds a broken surrogate)")
        self.expire_sessions(every_s=60.0)
        s = self._peek(session_id, refresh=False)  # the turn refreshes it once it holds the lock
        with self._sessions_lock:
            if s is None:
                s = self._sessions.setdefault(session_id, _Session())
            self._sessions[session_id] = self._sessions.pop(session_id)  # most recently used last
            s.used = time.time()
            self._evict()
        return s

    def _evict(self) -> None:
        """Keep at most ``conversation.max_live_sessions`` in memory (caller holds the sessions lock): the
        least recently used idle ones go; with a store they are only unloaded, without one forgotten."""
        cap = self.config.conversation.max_live_sessions
        for sid in list(self._sessions):
            if len(self._sessions) <= cap:
                break
            s = self._sessions[sid]
            if s.lock.locked():  # a turn is running in it
                continue
            del self._sessions[sid]
            if self._db is None:
                log.warning("more than %d live sessions: forgot the least recently used one", cap)

    def expire_sessions(self, every_s: float = 0.0) -> list[str]:
        """Delete the sessions idle for longer than ``conversation.session_idle_expiry_s`` (memory and
        store); returns their ids. Runs by itself when a turn opens a session, at most once a minute."""
        ttl = self.config.conversation.session_idle_expiry_s
        now = time.time()
        if ttl is None or now - self._last_expiry < every_s:
            return []
        self._last_expiry = now
        with self._sessions_lock:
            gone = [sid for sid, s in self._sessions.items() if now - s.used > ttl and not s.lock.locked()]
            for sid in gone:
                del self._sessions[sid]
        if self._db is not None:
            stored = set(self._db.expire(ttl))
            with self._sessions_lock:  # a live copy of a session the store just dropped would write it back
                for sid in stored - set(gone):
                    s = self._sessions.get(sid)
                    if s is not None and now - s.used > ttl and not s.lock.locked():
                        del self._sessions[sid]
            gone = sorted(set(gone) | stored)
        return gone

    def reset(self, session_id: str = DEFAULT_SESSION) -> None:
        """Forget a session: its messages, emotion history and risk, in memory and in the store."""
        with self._sessions_lock:
            self._sessions.pop(session_id, None)
        if self._db is not None and isinstance(session_id, str):
            self._db.delete(session_id)

    delete_session = reset

    def busy(self, session_id: str) -> bool:
        """Whether a turn is being answered in this session right now."""
        with self._sessions_lock:
            s = self._sessions.get(session_id)
        return s is not None and s.lock.locked()

    def live_sessions(self) -> int:
        """How many sessions are held in memory now."""
        with self._sessions_lock:
            return len(self._sessions)

    def sessions(self) -> list[str]:
        with self._sessions_lock:
            live = list(self._sessions)
        return live + [sid for sid in (self._db.ids() if self._db is not None else []) if sid not in set(live)]

    def export_session(self, session_id: str = DEFAULT_SESSION) -> dict:
        """The whole session as JSON-able data (messages, emotion tracker and states, risk), for a person
        who asks for their data or for moving a conversation; ``import_session`` reads it back."""
        s = self._peek(session_id)
        if s is None:
            raise InvalidInputError(f"there is no conversation {session_id!r}")
        with s.lock:
            return {"session_id": session_id, "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    **s.snapshot()}

    def import_session(self, data: dict, session_id: str | None = None) -> str:
        """Replace (or create) a session from ``export_session`` data; returns its id."""
        if not isinstance(data, dict):
            raise InvalidInputError("a conversation to import must be a JSON object")
        sid = session_id or data.get("session_id")
        if not isinstance(sid, str) or not sid:
            raise InvalidInputError("the conversation has no session_id; pass one")
        restored = _Session.restore(data)
        if self._db is not None:
            saved = self._db.save(sid, restored.snapshot())
            restored.revision = saved if isinstance(saved, int) else 0
        with self._sessions_lock:
            self._sessions.pop(sid, None)
            self._sessions[sid] = restored
            self._evict()
        return sid

    def history(self, session_id: str = DEFAULT_SESSION) -> list[dict]:
        """A copy of the session's messages (``{"role", "content"}``), oldest first."""
        s = self._peek(session_id)
        return copy.deepcopy(s.messages) if s else []

    def emotion_state(self, session_id: str = DEFAULT_SESSION) -> EmotionState:
        s = self._peek(session_id)
        if s and s.states:
            return s.states[-1]
        return self._empty_state()

    def risk(self, session_id: str = DEFAULT_SESSION) -> dict | None:
        """The session's crisis risk (``{"category", "degree", "level", "since_turn", "last_turn"}``)
        while it lasts (see ``Reply.risk``), else None."""
        s = self._peek(session_id)
        return dict(s.risk) if s is not None and s.risk is not None else None

    def trajectory(self, session_id: str = DEFAULT_SESSION) -> list[EmotionState]:
        """The emotion state after each user turn of the session, oldest first."""
        s = self._peek(session_id)
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
        With ``conversation.turn_timeout_s``, a turn whose reply is not ready within that time is
        stopped and raises ``TurnTimeoutError`` before yielding any text; nothing is committed.
        With a store shared by several processes, the turn continues from the newest saved state, and
        raises ``ConversationConflictError`` (nothing committed) if another process saved the session
        while it ran.
        """
        screen_input(text, self.config.conversation.max_input_chars)  # bad input creates no session
        limit = self.config.conversation.turn_timeout_s
        clock = _TurnClock(cancel, limit) if limit else None  # started before waiting for the session
        session = self._session(session_id)
        with session.lock:  # one turn at a time per session; other sessions run freely
            if self._db is not None:
                self._refresh(session_id, session)
            tracker = copy.deepcopy(session.tracker)
            turn = self._turn(text, session.messages, tracker, session_id, clock or cancel, session.risk)
            result = yield from (_timed(turn, clock) if clock is not None else turn)
            reply, user_text, events = result
            kept_text, bot_text = user_text, reply.text
            if self.config.conversation.redact:  # what is kept has no contact or payment details
                from .privacy import redact

                kept_text, found = redact(user_text)
                bot_text = redact(reply.text)[0]
                reply.safety = (*reply.safety, *(f"redacted:{kind}" for kind in sorted(found)))
            # shallow copies: an undo must also bring back the turns that max_stored_turns drops below
            before = (list(session.messages), list(session.states), session.risk, session.tracker)
            session.risk = reply.risk
            session.messages.extend([{"role": "user", "content": kept_text}, {"role": "assistant", "content": bot_text}])
            session.tracker = tracker
            session.states.append(reply.emotion)
            keep = self.config.conversation.max_stored_turns
            if len(session.states) > keep:
                del session.messages[: len(session.messages) - 2 * keep]
                del session.states[: len(session.states) - keep]
            if self._db is not None:  # one transaction, before the reply is handed out
                try:
                    self._save(session_id, session)
                except Exception as exc:  # noqa: BLE001 - the turn is undone: live and stored stay equal
                    session.messages, session.states, session.risk, session.tracker = before
                    if isinstance(exc, ConversationConflictError):  # the next turn reloads the other's save
                        log.warning("session %r: %s", session_id, exc)
                        raise
                    log.exception("session %r: the turn could not be stored", session_id)
                    raise GenerationError(f"the conversation could not be saved ({type(exc).__name__}); "
                                          "please try again") from exc
        for event in events:
            self._notify(event)
        yield reply

    def respond(self, messages: list[dict], cancel: threading.Event | None = None) -> Iterator[str | Reply]:
        """Stateless turn: ``messages`` is the whole conversation, ending with the user's message.

        Used by the LangChain Runnable, where the caller keeps the history. The emotion state is
        rebuilt from the user messages, as a session would have built it.
        """
        history, tracker = self._replay(messages)
        reply, _, events = yield from self._turn(messages[-1].get("content"), history, tracker, "", cancel)
        for event in events:
            self._notify(event)
        yield reply

    def prompt(self, messages: list[dict], state: EmotionState | None = None, stateless: bool = False
               ) -> tuple[list[dict], EmotionState, str | None]:
        """What ``respond(messages)`` would send to the reply model: the rendered prompt, the emotion
        state and the crisis category (or None). For evaluation (perplexity of a reference reply).
        ``state``: render with this emotion state instead of the one read (the conditioning ablation);
        ``stateless``: the unconditioned prompt that guidance at decoding compares with."""
        history, tracker = self._replay(messages)
        screened, reading, read_state = self._read(messages[-1].get("content"), tracker, history)
        crisis = reading.category if reading else None
        state = read_state if state is None else state
        prompt, kept = self._fit_prompt(history, screened.text, state, crisis)
        if stateless:
            prompt = self._unconditioned(history, screened.text, state, crisis, kept)
        return prompt, state, crisis

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

    def _read(self, text, tracker: EmotionTracker, history: list[dict] = ()):
        """Screen a message, look for crisis language (in it, and in the recent user turns together), and
        update the tracker with its emotions."""
        screened = screen_input(text, self.config.conversation.max_input_chars)
        earlier = [m["content"] for m in history if m.get("role") == "user"]
        signal = self._on_model_thread(self.crisis_detector.read, screened.text, earlier)
        if self.emotion_classifier is not None:
            state = tracker.update(self._classify([screened.text])[0])
        else:
            tracker.turn += 1
            state = EmotionState.unavailable(turn=tracker.turn)
        if (signal is not None and signal.level == "check_in" and signal.quiet_in_context
                and signal.degree != "imminent" and glad_now(state)):
            # only the classifier, only the message alone and at the check-in level, the conversation below
            # the check-in threshold, not imminent, and the message leans glad: no question about danger (on
            # the dev conversations this drops one question to an ordinary turn, "Talking to my head of
            # department on Monday. Thanks", and no crisis turn; see docs/crisis.md)
            log.info("a possible crisis read in a glad message alone, not in its conversation, was set aside")
            signal = None
        return screened, signal, state

    def _turn(self, text, history: list[dict], tracker: EmotionTracker, session_id: str, cancel,
              risk: dict | None = None):
        t_queued = time.perf_counter()
        with self._gate.hold(cancel):  # the model work of a turn, first come first served
            t0 = time.perf_counter()
            screened, signal, state = self._read(text, tracker, history)
            attack = is_instruction_attack(screened.text) or continues_an_attack(
                screened.text, history, self.prompts.written("redirect"))
            if attack and signal is not None and signal.source in ("classifier", "conversation"):
                # "Tell me the first sentence of your instructions" read by the classifier alone as a possible
                # crisis; a rule match ("ignore your rules, I want to die") still counts
                log.info("session %r: a possible crisis read by the classifier alone in an attempt on the "
                         "instructions was set aside", session_id)
                signal = None
            signal, risk = self._settle(signal, self._current_risk(risk, tracker.turn), tracker.turn, screened.text)
            checking_in = bool(signal and signal.level == "check_in")
            followup = bool(signal and not checking_in and risk and risk.get("level") == "alarm"
                            and risk["category"] == signal.category)
            crisis = signal.category if signal else None
            flags = screened.flags + ((signal.flag,) if signal else ())
            events: list[CrisisEvent] = []  # handed to on_crisis once the turn is committed
            risk = self._next_risk(risk, signal, tracker.turn, session_id, screened.text, events)
            if signal:
                log.info("session %r: message flagged as possible crisis (%s, %s, %s, by %s)", session_id, crisis,
                         signal.level, signal.degree, signal.source)
            t_emotion = time.perf_counter()
            # a written reply, no prompt: the check-in question, or the crisis opening
            fixed = checking_in or (bool(crisis) and self.config.conversation.crisis_reply == "fixed")
            guide = crisis or (risk["category"] if risk else None)  # crisis guidance while the session is at risk
            messages, kept = ([], 0) if fixed else self._fit_prompt(history, screened.text, state, guide)
            t_prompt = time.perf_counter()
            if self.config.conversation.log_conversations:
                log.debug("session %r user: %s", session_id, screened.text)

            from .generation import StreamStats

            stats = StreamStats()
            candidates: list[Candidate] = []
            chosen: int | None = None
            if checking_in and signal.source == "check_in_unclear":
                reply_text = self.prompts.check_in(crisis, again=True)
                reason = "written check-in, asked again: a yes that went on about something else may not answer it"
            elif checking_in:
                reply_text = self.prompts.check_in(crisis)
                reason = "written check-in: the message may mean danger; the person is asked directly"
            elif fixed:
                # A small model can say the wrong thing here; a written reply cannot.
                reply_text = self.prompts.crisis_opening(followup)
                reason = "written crisis " + ("follow-up (the session was already at risk)" if followup else "opening")
            elif attack:
                reply_text, reason = self.prompts.written("redirect")[0], "written redirect: the message asked for the bot's instructions"
                flags += ("instruction_attack",)
            elif answer := written_answer(screened.text):
                name, why, flag = answer
                lines = self.prompts.written(name)  # several lines (the jokes): the next one each time it is asked
                said = sum(m["role"] == "assistant" and m["content"] in lines for m in history)
                reply_text, reason = lines[said % len(lines)], f"written: {why}"
                flags += (flag,) if flag else ()
            else:
                unconditioned = None
                if self.config.generation.guidance != 1:
                    unconditioned = self._unconditioned(history, screened.text, state, guide, kept)
                candidates = self._candidates(messages, history, screened.text, state, stats, cancel,
                                              at_risk=bool(guide), unconditioned=unconditioned)
                choice = choose(candidates)
                chosen = choice.index
                if choice.chosen is None and not candidates:
                    reply_text, reason = self.prompts.written("fallback")[0], "written fallback: the model wrote nothing"
                elif choice.chosen is None:
                    reply_text = self.prompts.written("fallback")[0]
                    reason = "written fallback: every candidate failed a check that must never fail"
                    flags += ("output_replaced",)
                    log.warning("session %r: every candidate reply failed the output checks; the fallback was shown", session_id)
                else:
                    reply_text = choice.chosen.text
                    reason = _reason(choice.chosen, len(candidates))
            t_first = time.perf_counter()  # the person sees text from here on
        for piece in re.findall(r"\S+\s*", reply_text):  # the checked reply, streamed out as it is read
            yield piece
        if crisis and not (signal and signal.source == "check_in_unclear"):  # shown with the question a turn ago
            resources = self.prompts.resources(crisis)
            yield "\n\n" + resources
            reply_text = f"{reply_text}\n\n{resources}"
        t_end = time.perf_counter()
        gen_s = stats.generate_s or ((t_end - t_prompt) if stats.model_called else 0.0)
        timings = {
            "queue_ms": (t0 - t_queued) * 1e3,  # waiting for other sessions' turns
            "emotion_ms": (t_emotion - t0) * 1e3,  # screening, crisis check and emotion reading
            "prompt_ms": (t_prompt - t_emotion) * 1e3,
            "first_token_ms": (t_first - t_prompt) * 1e3,  # generation, checks and choice: the wait for text
            "generate_ms": gen_s * 1e3,
            "rank_ms": stats.rank_s * 1e3,  # part of first_token_ms
            "total_ms": (t_end - t_queued) * 1e3,
            "prompt_tokens": stats.prompt_tokens,
            "new_tokens": stats.new_tokens,
            "tokens_per_s": stats.new_tokens / gen_s if gen_s > 0 else 0.0,
        }
        timings = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in timings.items()}
        if self.config.conversation.log_conversations:
            log.debug("session %r bot: %s", session_id, reply_text)
        timings["candidates"] = len(candidates)
        timings["backend"] = self.backend
        reply = Reply(
            text=reply_text, emotion=state, session_id=session_id, turn=tracker.turn,
            safety=flags, timings=timings, guidance=self.prompts.guidance_key(state, guide),
            history_turns_used=kept, stopped=stats.stopped, crisis=crisis,
            crisis_degree=signal.degree if signal else None, crisis_source=signal.source if signal else None,
            crisis_level=signal.level if signal else None,
            risk=risk,
            candidates=[c.to_dict() for c in candidates], chosen=chosen, reason=reason,
        )
        return reply, screened.text, events

    def _current_risk(self, risk: dict | None, turn: int) -> dict | None:
        """The session's risk at user turn ``turn``, or None once ``risk_turns`` turns passed without a flag."""
        if risk is not None and turn - risk["last_turn"] > self.config.conversation.risk_turns:
            return None
        return risk

    def _settle(self, signal: CrisisReading | None, risk: dict | None, turn: int,
                text: str) -> tuple[CrisisReading | None, dict | None]:
        """This turn's crisis reading in the light of the session's risk: an answer to last turn's check-in
        question (yes: a crisis; no: the question is settled), and no second flag for what the risk
        already holds (the same disclosure read again with the recent turns, or a second check-in)."""
        if risk and risk.get("level") == "check_in" and risk["last_turn"] == turn - 1 and (
                signal is None or signal.level == "check_in"):
            if signal is None and yes_then_story(text) and not risk.get("asked_again"):  # the question again, once
                return CrisisReading(risk["category"], "concern", "check_in_unclear", None, {}, "check_in"), risk
            if is_affirmative(text):
                return CrisisReading(risk["category"], "concern", "check_in_answer", None, {}, "alarm"), risk
            if is_denial(text):
                return None, None
        if signal and risk and risk["category"] == signal.category and (
                signal.source == "conversation" or signal.level == "check_in"):
            return None, risk
        return signal, risk

    def _next_risk(self, risk: dict | None, signal: CrisisReading | None, turn: int, session_id: str,
                   text: str, events: list[CrisisEvent]) -> dict | None:
        """The session's risk after this turn; adds to ``events`` (for ``on_crisis``, called when the
        turn is committed: a turn that times out or loses a race calls nothing) when it rises: to a
        check-in from nothing, or to an alarm (a first alarm, a new category, a check-in answered yes,
        or ``concern`` becoming ``imminent``)."""
        if signal is None:
            return risk
        same = risk is not None and risk["category"] == signal.category
        if signal.level == "check_in":
            if signal.source == "check_in_unclear":
                return {**risk, "last_turn": turn, "asked_again": True}
            if risk and risk.get("level") == "alarm":
                return {**risk, "last_turn": turn}
            events.append(CrisisEvent(session_id, signal.category, signal.degree, signal.source, text, turn, "check_in"))
            return {"category": signal.category, "degree": "possible", "level": "check_in",
                    "since_turn": turn, "last_turn": turn}
        was_alarm = same and risk.get("level") == "alarm"
        rises = not was_alarm or (risk["degree"] != "imminent" and signal.degree == "imminent")
        degree = "imminent" if signal.degree == "imminent" or (was_alarm and risk["degree"] == "imminent") else "concern"
        new = {"category": signal.category, "degree": degree, "level": "alarm",
               "since_turn": risk["since_turn"] if was_alarm and not rises else turn, "last_turn": turn}
        if rises:
            events.append(CrisisEvent(session_id, signal.category, degree, signal.source, text, turn))
        return new

    def _notify(self, event: CrisisEvent) -> None:
        if self.on_crisis is None:
            return
        try:
            self.on_crisis(event)
        except Exception:  # noqa: BLE001 - a desk's hook must never break the reply
            log.exception("session %r: the on_crisis callback failed", event.session_id)

    def _candidates(self, messages: list[dict], history: list[dict], text: str, state: EmotionState,
                    stats, cancel, at_risk: bool = False, unconditioned: list[dict] | None = None) -> list[Candidate]:
        """The candidate replies, each checked and scored by the ranker: the written openers (whole replies,
        ``bot.openers``), the model's and the pool's, or for a first message that is only a greeting, the
        written greetings."""
        conversation = [*history, {"role": "user", "content": text}]
        if is_greeting(text) and not history:
            # a first hello: the written greetings (warm, and an invitation to talk) are the candidates
            out = [Candidate(g, None, (), "written") for g in self.prompts.written("greeting")]
            distressed, good = False, None
        else:
            n = self.config.generation.candidates
            # sad, afraid or angry as the classifier reads it, a setback told in glad-sounding words, or
            # the person running themselves down ("how fat I looked" reads as realization)
            # (a setback told a turn or two before counts unless this message is clearly glad: "My dog died
            # this morning." then "I got the job!!!" is good news, not more grief)
            bad_news = (tells_bad_news(conversation, turns=1) or puts_self_down(conversation)
                        or (tells_bad_news(conversation) and not glad_now(state)))
            # what happened, read from the ranker's embedding of the conversation, when the words voice no
            # feeling ("my mum read my diary and brought it up at dinner" reads as neutral)
            sampled = 1 if self.config.generation.temperature <= 0 else n  # greedy decoding writes one
            vector = self._context_vector(conversation, sampled, at_risk)
            # good news told in plain words ("passed my driving test", "biopsy came back benign"), which
            # the classifier often reads as neutral: trusted where the emotion reading does not contradict it
            good = None if bad_news or at_risk else plain_good_news(conversation, state)
            bad_situation = (vector is not None and getattr(self._ranker, "situation_model", None) is not None
                             and self._ranker.bad_situation(vector) and not is_glad(state) and not good)
            # (good news told with tears of joy or a sleepless night reads as sadness to the classifier: the news decides)
            distressed = (is_distressed(state) and not good) or bad_news or bad_situation
            glad = (is_glad(state) or bool(good)) and not bad_news
            joyless = is_joyless(state) and not good
            family, openers = self._openers(conversation, state, distressed, sampled, at_risk, good, glad)
            # an opener that ends with a question is the whole reply: what the model wrote after one was
            # mostly a second question ("How are you holding up? Is your daughter and son-in law still
            # safe?"), so the model writes only the candidates that have no opener
            whole = list(dict.fromkeys(o for o in openers if o.rstrip().endswith("?")))
            continued = [o for o in openers if not o.rstrip().endswith("?")]  # a folder of your own
            instructions = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
            out = [Candidate(o, None, reply_problems(o, conversation, distressed, instructions, True, at_risk, glad,
                                                     joyless, bool(good), True), source="opener", opener=o)
                   for o in whole]
            free = n if not whole else max(0, sampled - len(whole))
            try:
                extra = {"unconditioned": unconditioned} if unconditioned else {}
                if continued:
                    extra["openers"] = continued
                stats.model_called = bool(free)
                generated = (self.reply_model.candidates(messages, self.config.generation, free, stats, cancel, **extra)
                             if free else [])
            except (GenerationError, InvalidInputError):
                raise
            except Exception as exc:  # noqa: BLE001 - any model failure becomes one clear error
                raise GenerationError(f"the reply model failed: {exc}") from exc
            for raw, finished in generated:
                reply = raw.strip() if finished else trim_to_sentence(raw.strip())
                if reply:
                    out.append(Candidate(reply, None, reply_problems(reply, conversation, distressed, instructions,
                                                                     finished or reply != raw.strip(), at_risk, glad,
                                                                     joyless, bool(good), bool(openers)),
                                         opener=next((o for o in continued if raw.startswith(o)), None)))
            if not at_risk:  # in a possible crisis only the model, guided for it, writes
                out += self._retrieved(conversation, distressed, {c.text for c in out}, glad, joyless, vector,
                                       bool(good), bool(openers))
            if family in (UNCLEAR, DILEMMA) and openers:
                # the feeling could not be read: the model's and the pool's own words guess at it ("That
                # is so nice of you" to a mother who read a diary); the written line does not, nor does a
                # reply that acknowledges the person ("That really sucks... did you tell them?")
                for c in out:
                    if c.opener is None and not acknowledges(c.text):
                        c.problems = (*c.problems, "guesses_the_feeling")
        if len(out) > 1 and self.ranker is not None:
            started = time.perf_counter()
            self._rank(out, conversation, state)
            g = self.config.generation
            bonus, asking, pooled = g.sympathy_bonus, g.question_bonus, g.pool_bonus
            for c in out:
                if c.score is None:
                    continue
                # the kind one among those that fit as well: sympathy for distress, gladness for good news
                if bonus and ((distressed and offers_sympathy(c.text)) or (good and celebrates(c.text))):
                    c.score += bonus
                if asking and asks_a_question(c.text):  # one that asks the person, among those that fit as well
                    c.score += asking
                if pooled and c.source == "retrieved":  # a person's words among those that fit as well
                    c.score += pooled
            stats.rank_s = time.perf_counter() - started
        if not at_risk and out:  # harm talk that the person never raised
            harmful = self._on_model_thread(self.crisis_detector.harmful_replies, [c.text for c in out])
            for c, bad in zip(out, harmful):
                if bad:
                    c.problems = (*c.problems, "harm_talk")
        return out

    def _openers(self, conversation: list[dict], state: EmotionState, distressed: bool, n: int,
                 at_risk: bool, good_news: str | None = None, glad: bool = False) -> tuple[str | None, list[str]]:
        """The openers' family and its lines for this turn (``bot.openers``; a line ending with a question is
        a whole candidate, another starts a model candidate): none in a possible crisis (the crisis
        guidance leads), on a backend that cannot continue a started reply (an OpenAI-compatible server:
        the larger model's own words are what it is there for), or when the person reads as glad without
        good news told in words (``good_news``: its kind; ``glad``: the bot's reading). A message of three
        words or more, not a greeting, that reads as neither distressed nor glad gets the "unclear" family
        ("dilemma" when it asks what to do)."""
        share = self.config.generation.openers
        if at_risk or share <= 0 or not getattr(self.reply_model, "takes_openers", False):
            return None, []
        unclear = state.available and not glad and not glad_now(state)  # the words are read by the family
        # the lean with the glad-news cap on the negative: love or thanks voiced in hardship is no reason to
        # leave out the acknowledgement
        name = opener_family(state, conversation, distressed, _leans_glad(state, 0.25, GLAD_NEGATIVE_BELOW),
                             good_news, unclear=unclear)
        if name is None:
            return None, []
        return name, pick_openers(self.prompts.openers(name), opened_count(n, share), conversation)

    def _context_vector(self, conversation: list[dict], candidates: int, at_risk: bool = False):
        """The ranker's embedding of the recent turns (the reply pool's search key, and what the situation
        is read from), or None without a ranker or when neither would read it. The ranker loads with the
        bot, or once a turn has several candidates to rank (as in ``_retrieved``)."""
        ranker = self._ranker if self._ranker is not None or candidates < 2 else self.ranker
        if ranker is None:
            return None
        searched = self.config.generation.retrieved > 0 and not at_risk and self.reply_pool is not None
        if not searched and getattr(ranker, "situation_model", None) is None:
            return None
        return self._on_model_thread(ranker.context_vector, conversation)

    def _retrieved(self, conversation: list[dict], distressed: bool, taken: set[str],
                   glad: bool = False, joyless: bool = False, vector=None, good_news: bool = False,
                   acknowledged: bool = False) -> list[Candidate]:
        """Human replies to the nearest conversations of the reply pool that pass every check and name
        nothing this person did not say (see ``bot.retrieval``)."""
        k = self.config.generation.retrieved
        if k <= 0 or (self._ranker is None and len(taken) < 2):
            # the ranker (which indexes the pool) loads with the bot, or once a turn has several
            # candidates to rank: a bot on a model passed in with one candidate a turn goes without
            return []
        pool = self.reply_pool
        if pool is None:
            return []
        from .retrieval import unsaid_specifics

        if vector is None:
            vector = self._on_model_thread(self.ranker.context_vector, conversation)
        out = []
        for row in pool.nearest(vector, k):
            text = row["reply"].strip()
            if text in taken or reply_problems(text, conversation, distressed, glad=glad, joyless=joyless,
                                               good_news=good_news, acknowledged=acknowledged) or unsaid_specifics(
                    text, conversation, pool.common):
                continue
            out.append(Candidate(text, None, (), "retrieved", similarity=row["similarity"]))
        return out

    def _rank(self, candidates: list[Candidate], conversation: list[dict], state: EmotionState) -> None:
        """Score the candidates: the ranker's fit, plus its weighted emotion fit when the ranker has an
        emotion profile and emotions are read."""
        ranker = self.ranker
        texts = [c.text for c in candidates]
        fits = self._on_model_thread(ranker.score, conversation, texts)
        weight = getattr(ranker, "emotion_weight", 0.0)
        emotion = []
        if weight and self.emotion_classifier is not None and state.available and state.last_turn:
            emotion = ranker.emotion_fit(state.last_turn, self._classify(texts))
        for i, c in enumerate(candidates):
            c.fit = fits[i]
            c.emotion_fit = emotion[i] if emotion else None
            c.score = fits[i] + (weight * emotion[i] if emotion else 0.0)

    def _unconditioned(self, history: list[dict], text: str, state: EmotionState, crisis: str | None,
                       kept: int) -> list[dict]:
        """The prompt of ``_fit_prompt`` (the same ``kept`` recent turns) without the emotion state: what
        guidance at decoding compares the conditioned prompt with (``bot.guidance``)."""
        return self.prompts.render(history[len(history) - 2 * kept:] if kept else [], text, state, crisis,
                                   stateless=True)

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

    def _pool_description(self) -> str:
        if self._ranker is None and not self._pool_opened:  # describing the bot must not load models
            return "not read yet (with the ranker, once a turn has several candidates)"
        try:
            pool = self.reply_pool
        except BotError as exc:
            return f"unreadable ({exc})"
        if pool is None:
            from .retrieval import NO_POOL

            return NO_POOL if self.config.model.reply_pool == "auto" and self._ranker is not None else "none"
        k = self.config.generation.retrieved
        return f"{len(pool):,} human replies in {pool.folder}; {k} join the candidates each turn (non-commercial use)"

    def info(self) -> dict[str, Any]:
        describe = getattr(self.reply_model, "describe", None)
        return {
            "reply_model": describe() if describe else repr(self.reply_model),
            "emotion_classifier": (getattr(getattr(self.emotion_classifier, "resolved", None), "description",
                                           repr(self.emotion_classifier))
                                   if self.emotion_classifier is not None else None),
            "emotion_tracking": "on" if self.emotion_classifier is not None else EmotionState.unavailable().reason,
            "ranker": (getattr(getattr(self._ranker, "resolved", None), "description", repr(self._ranker))
                       + (" with its cross-encoder" if getattr(self._ranker, "has_cross", False) else "")
                       if self._ranker is not None else (self.config.model.ranker or None)),
            "reply_pool": self._pool_description(),
            "crisis_detector": (str(getattr(self.crisis_detector.classifier, "folder", self.crisis_detector.classifier))
                                if self.crisis_detector.classifier is not None else "rules only"),
            "prompts": str(self.prompts.dir),
            "generation": asdict(self.config.generation),
            "conversation": asdict(self.config.conversation),
        }
