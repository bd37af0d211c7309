"""Load benchmark: simulated users holding conversations with ``serve`` over HTTP at once.

    empathetic-bot bench --concurrent 20                # starts the service on loopback, in this process
    empathetic-bot bench --concurrent 20 --url http://desk:8000 --api-key KEY   # a running service

Each simulated user opens its own conversation and writes ``--turns`` messages (5), one after the
other, each as a streamed request to ``/v1/chat/completions``; all users start together. Printed for
one user alone and then for N together: turn latency (p50 / p95 / max), time to the first streamed
text, turns and reply tokens per second over the whole run, refusals and errors by kind, and the
service's resident memory (peak; only when it runs in this process). Prints figures; it is not a test.

Started here, the service runs with no rate limits and a waiting line as long as the number of users
(a desk's real limits would refuse most of a one-address load test); against ``--url`` the service's
own limits apply, and what they refuse is counted.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field

# Five-turn conversations the simulated users take in turn: everyday troubles, varied in length.
CONVERSATIONS = (
    ("My sister didn't invite me to her wedding and I only found out from a cousin.",
     "We used to be close. I don't know what I did.",
     "Part of me wants to call her and part of me never wants to speak to her again.",
     "Maybe I'll write to her first. Talking on the phone always goes badly.",
     "Thanks, that helps a bit."),
    ("I start a new job on Monday and I'm terrified I'll mess it up.",
     "It's my first job since I was made redundant last year.",
     "Everyone there seems so confident in the interviews.",
     "I guess they hired me for a reason.",
     "I'll try to sleep early tonight."),
    ("My dog is having surgery tomorrow and I can't stop worrying.",
     "She's twelve, so the vet said there are risks.",
     "I keep thinking about how quiet the house would be without her.",
     "My partner says I'm overthinking it.",
     "I'll take tomorrow off to be there when she wakes up."),
    ("I've been so lonely since I moved to this city.",
     "I work from home, so some days I don't talk to anyone at all.",
     "I tried a climbing club once but nobody spoke to me.",
     "Maybe I should give it another go.",
     "It's nice to talk to someone about it."),
)


@dataclass
class TurnResult:
    user: int
    turn: int
    status: int
    kind: str = ""  # the error or refusal type, empty when the turn was answered
    latency_s: float = 0.0
    first_text_s: float | None = None
    tokens: int = 0


@dataclass
class Phase:
    users: int
    turns: int
    wall_s: float = 0.0
    results: list[TurnResult] = field(default_factory=list)
    peak_rss_mb: float | None = None

    def summary(self) -> dict:
        ok = [r for r in self.results if r.status == 200 and not r.kind]
        lat = sorted(r.latency_s for r in ok)
        first = sorted(r.first_text_s for r in ok if r.first_text_s is not None)
        failed: dict[str, int] = {}
        for r in self.results:
            if r.status != 200 or r.kind:
                key = f"{r.status} {r.kind}".strip()
                failed[key] = failed.get(key, 0) + 1
        return {
            "users": self.users, "turns_per_user": self.turns, "turns_sent": len(self.results),
            "turns_answered": len(ok), "failed": failed, "wall_s": round(self.wall_s, 2),
            "turn_s": _percentiles(lat), "first_text_s": _percentiles(first),
            "turns_per_s": round(len(ok) / self.wall_s, 3) if self.wall_s else None,
            "reply_tokens_per_s": round(sum(r.tokens for r in ok) / self.wall_s, 1) if self.wall_s else None,
            "peak_rss_mb": None if self.peak_rss_mb is None else round(self.peak_rss_mb),
        }


def _percentiles(values: list[float]) -> dict | None:
    if not values:
        return None

    def at(q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 3)

    return {"p50": round(statistics.median(values), 3), "p95": at(0.95), "max": round(values[-1], 3)}


def one_turn(client, url: str, session_id: str, text: str, headers: dict) -> tuple[int, str, float | None, int]:
    """One streamed turn: (status, error kind, seconds to the first text, reply tokens)."""
    t0 = time.perf_counter()
    first = None
    tokens = 0
    body = {"messages": [{"role": "user", "content": text}], "stream": True}
    with client.stream("POST", f"{url}/v1/chat/completions", json=body,
                       headers={**headers, "X-Session-Id": session_id}) as response:
        if response.status_code != 200:
            response.read()
            try:
                kind = response.json()["error"]["type"]
            except (ValueError, KeyError, TypeError):
                kind = "unreadable"
            return response.status_code, kind, None, 0
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                return 200, event["error"].get("type", "error"), first, tokens
            extension = event.get("empathetic_bot")
            if extension:
                tokens = int((extension.get("timings") or {}).get("new_tokens", 0))
            if event["choices"][0]["delta"].get("content") and first is None:
                first = time.perf_counter() - t0
    return 200, "", first, tokens


def run_phase(url: str, users: int, turns: int, headers: dict, rss=None, timeout_s: float = 300.0) -> Phase:
    import httpx

    phase = Phase(users, turns)
    lock = threading.Lock()
    start = threading.Barrier(users + 1)
    peak = [rss() if rss else 0.0]
    done = threading.Event()

    def user(index: int) -> None:
        conversation = CONVERSATIONS[index % len(CONVERSATIONS)]
        session_id = f"load-{uuid.uuid4().hex[:12]}"
        with httpx.Client(timeout=timeout_s) as client:
            start.wait()
            for t in range(turns):
                t0 = time.perf_counter()
                try:
                    status, kind, first, tokens = one_turn(client, url, session_id, conversation[t % len(conversation)],
                                                           headers)
                except httpx.HTTPError as exc:
                    status, kind, first, tokens = 0, type(exc).__name__, None, 0
                result = TurnResult(index, t, status, kind, time.perf_counter() - t0, first, tokens)
                with lock:
                    phase.results.append(result)

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], rss())

    threads = [threading.Thread(target=user, args=(i,), daemon=True) for i in range(users)]
    for t in threads:
        t.start()
    sampler = threading.Thread(target=sample, daemon=True) if rss else None
    if sampler:
        sampler.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    phase.wall_s = time.perf_counter() - t0
    done.set()
    if sampler:
        sampler.join()
        phase.peak_rss_mb = peak[0]
    return phase


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_local_service(bot, max_waiting: int):
    """``bot`` served on a free loopback port in a thread of this process, without rate limits;
    returns (url, stop)."""
    import uvicorn

    from .service import create_app

    app = create_app(bot, None, max_waiting=max_waiting, rate_per_key=None, rate_per_session=None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start on loopback")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def run_load(config, users: int = 20, turns: int = 5, url: str | None = None, api_key: str | None = None,
             as_json: bool = False) -> int:
    if users < 1 or turns < 1:
        raise ValueError("--concurrent and --turns must be at least 1")
    if config.generation.seed is None:
        config.generation.seed = 0
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    stop, rss = None, None
    if url is None:
        from .core import EmpatheticBot

        url, stop = start_local_service(EmpatheticBot(config), max_waiting=max(8, users))
        from .benchmark import _rss_mb as rss
    url = url.rstrip("/")
    try:
        one_turn_warm = run_phase(url, 1, 1, headers)  # the first turn's one-off costs stay out of the figures
        phases = [run_phase(url, 1, turns, headers, rss)]
        if users > 1:
            phases.append(run_phase(url, users, turns, headers, rss))
    finally:
        if stop is not None:
            stop()
    report = {"url": url if stop is None else "loopback (started here)", "cpu_count": os.cpu_count(),
              "warm_up_turn_s": round(one_turn_warm.results[0].latency_s, 3) if one_turn_warm.results else None,
              "phases": [p.summary() for p in phases]}
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    failed = sum(sum(p["failed"].values()) for p in report["phases"])
    return 1 if failed and all(p["turns_answered"] == 0 for p in report["phases"]) else 0


def format_report(report: dict) -> str:
    lines = [f"load: {report['url']}, {report['cpu_count']} CPU cores"]

    def pct(d: dict | None) -> str:
        return "-" if d is None else f"{d['p50']:.2f} / {d['p95']:.2f} / {d['max']:.2f}"

    header = (f"{'users':>5} {'turns':>6} {'answered':>8} {'turn s p50/p95/max':>22} {'first text s p50/p95/max':>26} "
              f"{'turns/s':>8} {'tokens/s':>9} {'peak MB':>8}  failed")
    lines.append(header)
    for p in report["phases"]:
        failed = ", ".join(f"{k}: {v}" for k, v in sorted(p["failed"].items())) or "none"
        lines.append(f"{p['users']:>5} {p['turns_sent']:>6} {p['turns_answered']:>8} {pct(p['turn_s']):>22} "
                     f"{pct(p['first_text_s']):>26} {p['turns_per_s'] or 0:>8.2f} {p['reply_tokens_per_s'] or 0:>9.1f} "
                     f"{p['peak_rss_mb'] if p['peak_rss_mb'] is not None else '-':>8}  {failed}")
    return "\n".join(lines)
