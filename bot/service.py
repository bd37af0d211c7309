"""``empathetic-bot serve``: the bot as an HTTP service for desks not written in Python.

Endpoints (FastAPI, served by uvicorn):

- ``POST /v1/chat/completions``: OpenAI-compatible. The last user message of ``messages`` is the turn;
  the conversation is the bot's own session, named by the ``X-Session-Id`` header or the ``user``
  field (one of them is required). ``stream: true`` answers with server-sent events. Each answer
  carries an ``empathetic_bot`` field: the emotion state, the crisis category and level, the risk,
  the safety flags and the timings.
- ``GET /v1/sessions/{id}`` (history, emotion state, risk), ``DELETE /v1/sessions/{id}``,
  ``GET /v1/sessions/{id}/export``.
- ``GET /health`` and ``GET /metrics`` (Prometheus text format: turns, turn latency, crisis flags by
  category, refusals and errors).

API keys are optional: ``--api-keys FILE`` names a file with one SHA-256 hex digest of a key per line
(``empathetic-bot serve --hash-key KEY`` prints one); a request without a valid ``Authorization:
Bearer KEY`` then gets 401 and no conversation data. Requests over ``--max-body-bytes`` get 413. At
most ``--max-waiting`` turns wait for the model at once; more get 429 with ``Retry-After``, as does a
second turn in a session that is still answering the first.

Turns are rate limited by token buckets: one per API key (per client address when no keys are
configured; ``--rate-per-key``, default 30 a minute) and one per session (``--rate-per-session``,
default 12 a minute). A bucket holds N turns and refills evenly over the period; a turn past it gets
429 with ``Retry-After`` and changes nothing. A turn whose reply is not ready within
``--turn-timeout`` seconds (default 60) is stopped: 504, or a final error event when streamed, and
the session is left as it was. Several ``serve`` processes may share one store, a SQLite file on one
machine or a PostgreSQL database across machines (see ``bot.store`` and ``bot.store_sql``): each turn
continues from the newest saved state, and a turn that loses a race with another process for the same
session gets 409.
"""


import hashlib
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import BotError, ConversationConflictError, InvalidInputError, SessionStoreError, TurnTimeoutError

LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


class Metrics:
    """Counters and a latency histogram, written in the Prometheus text format."""

    def __init__(self):
        self._lock = threading.Lock()
        self.turns = 0
        self.errors: dict[str, int] = {}
        self.crisis: dict[str, int] = {}
        self.buckets = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0

    def turn(self, seconds: float, crisis: str | None) -> None:
        with self._lock:
            self.turns += 1
            self.latency_sum += seconds
            for i, b in enumerate(LATENCY_BUCKETS):
                if seconds <= b:
                    self.buckets[i] += 1
            if crisis:
                self.crisis[crisis] = self.crisis.get(crisis, 0) + 1

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def render(self, waiting: int) -> str:
        with self._lock:
            lines = ["# HELP empathetic_bot_turns_total Turns answered.", "# TYPE empathetic_bot_turns_total counter",
                     f"empathetic_bot_turns_total {self.turns}",
                     "# HELP empathetic_bot_turn_seconds Whole-turn latency.", "# TYPE empathetic_bot_turn_seconds histogram"]
            lines += [f'empathetic_bot_turn_seconds_bucket{{le="{b}"}} {n}' for b, n in zip(LATENCY_BUCKETS, self.buckets)]
            lines += [f'empathetic_bot_turn_seconds_bucket{{le="+Inf"}} {self.turns}',
                      f"empathetic_bot_turn_seconds_sum {self.latency_sum:.4f}", f"empathetic_bot_turn_seconds_count {self.turns}",
                      "# HELP empathetic_bot_crisis_flags_total Turns flagged as a possible crisis, by category.",
                      "# TYPE empathetic_bot_crisis_flags_total counter"]
            lines += [f'empathetic_bot_crisis_flags_total{{category="{c}"}} {n}' for c, n in sorted(self.crisis.items())]
            lines += ["# HELP empathetic_bot_refusals_total Requests refused or failed, by reason.",
                      "# TYPE empathetic_bot_refusals_total counter"]
            lines += [f'empathetic_bot_refusals_total{{reason="{k}"}} {n}' for k, n in sorted(self.errors.items())]
            lines += ["# HELP empathetic_bot_waiting_turns Turns waiting for or using the model now.",
                      "# TYPE empathetic_bot_waiting_turns gauge", f"empathetic_bot_waiting_turns {waiting}"]
        return "\n".join(lines) + "\n"


_PERIODS = {1.0: "a second", 60.0: "a minute", 3600.0: "an hour", 86400.0: "a day"}
_UNITS = {**dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
          **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
          **dict.fromkeys(("h", "hr", "hour", "hours"), 3600.0), **dict.fromkeys(("d", "day", "days"), 86400.0)}


@dataclass(frozen=True)
class Rate:
    """``count`` turns per ``seconds``: a bucket holds ``count`` turns and refills evenly over ``seconds``."""

    count: int
    seconds: float
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{self.count}/{self.seconds:g}s"

    def words(self) -> str:
        """``"30 turns a minute"``, for error messages."""
        period = _PERIODS.get(self.seconds, f"in {self.seconds:g} s")
        return f"{self.count} turn{'s' if self.count != 1 else ''} {period}"


def parse_rate(text: str | None) -> Rate | None:
    """``"30/min"``, ``"2/s"``, ``"500/hour"`` (also ``sec``, ``second``, ``m``, ``minute``, ``h``,
    ``hr``, ``d``, ``day`` and their plurals) as a ``Rate``; ``"0"``, ``"off"``, ``""`` or None: no limit."""
    if text is None or str(text).strip().lower() in ("", "0", "off", "none"):
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*([a-z]+)\s*", str(text).lower())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"a rate looks like 30/min, 2/s or 500/hour (0 or off for no limit), not {text!r}")
    count = int(m.group(1))
    if count == 0:
        return None
    return Rate(count, _UNITS[m.group(2)], f"{count}/{m.group(2)}")


class RateLimiter:
    """Token buckets by name (an API key's hash, a client address, a session id), one ``Rate`` for all.

    A name that is not in the table has a full bucket, so only buckets that are still refilling need
    to be kept: the full ones are dropped once per refill period, and names used once cannot grow
    the table without bound. ``clock`` is injectable for tests."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, when counted)
        self._pruned = clock()

    def _level(self, name: str, now: float) -> float:
        tokens, at = self._buckets.get(name, (float(self.rate.count), now))
        return min(float(self.rate.count), tokens + (now - at) * self.rate.count / self.rate.seconds)

    def take(self, name: str) -> float:
        """Take one turn from ``name``'s bucket: 0.0 when taken, else the seconds until there is one
        (and nothing is taken)."""
        with self._lock:
            now = self._clock()
            if now - self._pruned >= self.rate.seconds or len(self._buckets) > 100_000:
                self._pruned = now
                self._buckets = {n: b for n, b in self._buckets.items() if self._level(n, now) < self.rate.count}
            level = self._level(name, now)
            if level < 1.0:
                return max((1.0 - level) * self.rate.seconds / self.rate.count, 1e-3)
            self._buckets[name] = (level - 1.0, now)
            return 0.0

    def give_back(self, name: str) -> None:
        """Return a turn taken for a request that was then refused for another reason."""
        with self._lock:
            now = self._clock()
            self._buckets[name] = (min(float(self.rate.count), self._level(name, now) + 1.0), now)


def _failure(exc: BotError) -> tuple[int, str]:
    """The HTTP status and error type for a turn that failed."""
    if isinstance(exc, InvalidInputError):
        return 400, "invalid_input"
    if isinstance(exc, TurnTimeoutError):
        return 504, "turn_timeout"
    if isinstance(exc, ConversationConflictError):
        return 409, "conversation_conflict"
    if isinstance(exc, SessionStoreError) or isinstance(exc.__cause__, SessionStoreError):
        return 503, "store_unavailable"
    return 503, "generation_failed"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_key_hashes(path: str | None) -> set[str] | None:
    if not path:
        return None
    hashes = {line.strip().lower() for line in Path(path).read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    if not hashes:
        raise ValueError(f"{path} holds no key hashes")
    return hashes


def _extension(reply) -> dict:
    return {"session_id": reply.session_id, "turn": reply.turn, "emotion": reply.emotion.to_dict(),
            "crisis": reply.crisis, "crisis_level": reply.crisis_level, "risk": reply.risk,
            "safety": list(reply.safety), "timings": reply.timings, "reason": reply.reason}


DEFAULT_RATE_PER_KEY = "30/min"
DEFAULT_RATE_PER_SESSION = "12/min"


def create_app(bot, api_key_hashes: set[str] | None = None, max_body_bytes: int = 65536, max_waiting: int = 8,
               rate_per_key: Rate | str | None = DEFAULT_RATE_PER_KEY,
               rate_per_session: Rate | str | None = DEFAULT_RATE_PER_SESSION,
               clock: Callable[[], float] = time.monotonic):
    """The FastAPI app serving ``bot`` (see the module's text). ``rate_per_key`` and
    ``rate_per_session``: a ``Rate``, its text (``"30/min"``) or None for no limit. The turn time
    limit is the bot's own (``bot.config.conversation.turn_timeout_s``)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

    app = FastAPI(title="Empathetic Bot", version="1")
    metrics = Metrics()
    waiting = threading.BoundedSemaphore(max_waiting)
    state = {"waiting": 0}
    state_lock = threading.Lock()
    model_name = "empathetic-bot"
    rate_per_key = parse_rate(rate_per_key) if isinstance(rate_per_key, str) else rate_per_key
    rate_per_session = parse_rate(rate_per_session) if isinstance(rate_per_session, str) else rate_per_session
    key_limits = RateLimiter(rate_per_key, clock) if rate_per_key else None
    session_limits = RateLimiter(rate_per_session, clock) if rate_per_session else None

    def refuse(status: int, message: str, kind: str, headers: dict | None = None):
        metrics.error(kind)
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.url.path not in ("/health",) and api_key_hashes is not None:
            auth = request.headers.get("authorization", "")
            key = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
            if not key or hash_key(key) not in api_key_hashes:
                return refuse(401, "a valid API key is required (Authorization: Bearer KEY)", "unauthorized")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            return refuse(413, f"the request is larger than {max_body_bytes} bytes", "too_large")
        return await call_next(request)

    @app.get("/health")
    def health():
        return {"status": "ok", "backend": getattr(bot, "backend", None), "sessions_live": bot.live_sessions()}

    @app.get("/metrics")
    def prometheus():
        return PlainTextResponse(metrics.render(state["waiting"]), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "empathetic-bot"}]}

    def session_of(request: Request, body: dict) -> str | None:
        sid = request.headers.get("x-session-id") or body.get("user")
        return sid if isinstance(sid, str) and sid.strip() else None

    def client_of(request: Request) -> tuple[str, str]:
        """Whose turns these are, for the per-key limit: the key's hash (never the key), or the address."""
        if api_key_hashes is not None:
            auth = request.headers.get("authorization", "")
            return "key:" + hash_key(auth[7:].strip()), "API key"
        return "address:" + (request.client.host if request.client else "unknown"), "client address"

    def admit(request: Request, sid: str):
        """Take a turn from the key's and the session's buckets: None and a function that gives
        them back (for a request refused after this), or the 429 response, having taken nothing."""
        client, who = client_of(request)
        if key_limits is not None and (wait := key_limits.take(client)):
            after = max(1, math.ceil(wait))
            return refuse(429, f"rate limit: this {who} may start {key_limits.rate.words()}; try again in {after} s",
                          "key_rate_limited", {"Retry-After": str(after)}), None
        if session_limits is not None and (wait := session_limits.take(sid)):
            if key_limits is not None:
                key_limits.give_back(client)
            after = max(1, math.ceil(wait))
            return refuse(429, f"rate limit: this conversation may take {session_limits.rate.words()}; try again "
                          f"in {after} s", "session_rate_limited", {"Retry-After": str(after)}), None

        def give_back() -> None:
            if key_limits is not None:
                key_limits.give_back(client)
            if session_limits is not None:
                session_limits.give_back(sid)

        return None, give_back

    def unavailable(exc: BotError):
        status, kind = _failure(exc)
        return refuse(status, str(exc), kind, {"Retry-After": "5"} if kind == "store_unavailable" else None)

    @app.get("/v1/sessions/{session_id}")
    def get_session(session_id: str):
        try:
            history = bot.history(session_id)
            if not history:
                return refuse(404, "no such conversation", "not_found")
            return {"session_id": session_id, "messages": history, "emotion": bot.emotion_state(session_id).to_dict(),
                    "risk": bot.risk(session_id)}
        except BotError as exc:
            return unavailable(exc)

    @app.get("/v1/sessions/{session_id}/export")
    def export_session(session_id: str):
        try:
            return bot.export_session(session_id)
        except InvalidInputError:
            return refuse(404, "no such conversation", "not_found")
        except BotError as exc:
            return unavailable(exc)

    @app.delete("/v1/sessions/{session_id}")
    def delete_session(session_id: str):
        try:
            existed = bool(bot.history(session_id))
            bot.delete_session(session_id)
        except BotError as exc:
            return unavailable(exc)
        return {"session_id": session_id, "deleted": existed}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        raw = await request.body()
        if len(raw) > max_body_bytes:
            return refuse(413, f"the request is larger than {max_body_bytes} bytes", "too_large")
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return refuse(400, "the body is not valid JSON", "bad_request")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            return refuse(400, "messages must be a non-empty list", "bad_request")
        last = body["messages"][-1]
        if not isinstance(last, dict) or last.get("role") != "user" or not isinstance(last.get("content"), str):
            return refuse(400, "the last message must be {'role': 'user', 'content': '...'}", "bad_request")
        sid = session_of(request, body)
        if sid is None:
            return refuse(400, "name the conversation: an X-Session-Id header or the user field", "bad_request")
        refused, give_back = admit(request, sid)
        if refused is not None:
            return refused
        if not waiting.acquire(blocking=False):
            give_back()
            return refuse(429, "busy: too many turns are waiting; try again shortly", "busy", {"Retry-After": "2"})
        if bot.busy(sid):
            waiting.release()
            give_back()
            return refuse(429, "this conversation is still answering its last message", "session_busy",
                          {"Retry-After": "1"})
        with state_lock:
            state["waiting"] += 1
        text = last["content"]
        created, cid = int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:24]}"

        released = threading.Event()

        def finish():  # once, whichever comes first: the turn's end or the response's end
            with state_lock:
                if released.is_set():
                    return
                released.set()
                state["waiting"] -= 1
            waiting.release()

        def run_turn():
            t0 = time.perf_counter()
            try:
                pieces = list(bot.stream(text, session_id=sid))
            finally:
                finish()
            reply = pieces[-1]
            metrics.turn(time.perf_counter() - t0, reply.crisis)
            return reply

        if not body.get("stream"):
            from starlette.concurrency import run_in_threadpool

            try:
                reply = await run_in_threadpool(run_turn)
            except BotError as exc:  # a timeout (504), a conflict with another process (409), a failure (503)
                return unavailable(exc)
            return {"id": cid, "object": "chat.completion", "created": created, "model": model_name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.text},
                                 "finish_reason": "stop" if reply.stopped != "max_new_tokens" else "length"}],
                    "usage": {"prompt_tokens": reply.timings.get("prompt_tokens", 0),
                              "completion_tokens": reply.timings.get("new_tokens", 0),
                              "total_tokens": reply.timings.get("prompt_tokens", 0) + reply.timings.get("new_tokens", 0)},
                    "empathetic_bot": _extension(reply)}

        def events():
            def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
                event = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_name,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                if extra:
                    event["empathetic_bot"] = extra
                return f"data: {json.dumps(event, ensure_ascii=False)}\n\n"

            t0 = time.perf_counter()
            try:
                yield chunk({"role": "assistant"})
                for item in bot.stream(text, session_id=sid):
                    if isinstance(item, str):
                        yield chunk({"content": item})
                    else:
                        metrics.turn(time.perf_counter() - t0, item.crisis)
                        yield chunk({}, "stop" if item.stopped != "max_new_tokens" else "length", _extension(item))
            except BotError as exc:  # the status is sent already: the error is the stream's last event
                kind = _failure(exc)[1]
                metrics.error(kind)
                yield f"data: {json.dumps({'error': {'message': str(exc), 'type': kind}})}\n\n"
            finally:
                finish()
            yield "data: [DONE]\n\n"

        from starlette.background import BackgroundTask

        # a client gone before the stream starts never runs ``events``: the task frees its place then
        return StreamingResponse(events(), media_type="text/event-stream", background=BackgroundTask(finish))

    return app


def serve(config, host: str = "127.0.0.1", port: int = 8000, api_keys: str | None = None,
          max_body_bytes: int = 65536, max_waiting: int = 8, rate_per_key: Rate | str | None = DEFAULT_RATE_PER_KEY,
          rate_per_session: Rate | str | None = DEFAULT_RATE_PER_SESSION) -> None:
    import uvicorn

    from .core import EmpatheticBot

    app = create_app(EmpatheticBot(config), read_key_hashes(api_keys), max_body_bytes, max_waiting,
                     rate_per_key, rate_per_session)
    uvicorn.run(app, host=host, port=port, log_level="info")
