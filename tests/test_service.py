"""The HTTP service: OpenAI-compatible chat completions (plain and streamed), sessions, keys, limits,
metrics. On stand-in models through FastAPI's test client, and once for real over loopback."""

import json
import subprocess
import sys
import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from bot import BotConfig, EmpatheticBot  # noqa: E402
from bot.service import create_app, hash_key  # noqa: E402
from bot.store import SQLiteStore  # noqa: E402
from fakes import FakeReplyModel, KeywordClassifier  # noqa: E402


def make_client(tmp_path, replies=None, **kw):
    config = BotConfig()
    config.model.emotion_classifier = config.model.crisis_detector = config.model.ranker = None
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(replies), emotion_classifier=KeywordClassifier(),
                        store=SQLiteStore(tmp_path / "s.db"))
    return TestClient(create_app(bot, **kw)), bot


def ask(text, **extra):
    return {"model": "empathetic-bot", "messages": [{"role": "user", "content": text}], **extra}


def test_completion_with_the_emotion_state(tmp_path):
    client, bot = make_client(tmp_path, ["That sounds really hard."])
    r = client.post("/v1/chat/completions", json=ask("My dog died and I am so sad"), headers={"X-Session-Id": "u1"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "That sounds really hard."}
    ext = body["empathetic_bot"]
    assert ext["session_id"] == "u1" and ext["emotion"]["top"][0]["label"] == "sadness" and ext["crisis"] is None
    assert client.get("/v1/sessions/u1").json()["messages"][1]["content"] == "That sounds really hard."
    assert client.get("/v1/sessions/u1/export").json()["session_id"] == "u1"
    assert client.delete("/v1/sessions/u1").json() == {"session_id": "u1", "deleted": True}
    assert client.get("/v1/sessions/u1").status_code == 404 and bot.store.load("u1") is None


def test_streamed_completion(tmp_path):
    client, _ = make_client(tmp_path, ["I hear you, that is a lot."])
    with client.stream("POST", "/v1/chat/completions", json=ask("I am scared", stream=True, user="u2")) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[6:]) for line in lines[:-1]]
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert text.strip() == "I hear you, that is a lot."
    assert events[-1]["choices"][0]["finish_reason"] == "stop" and events[-1]["empathetic_bot"]["session_id"] == "u2"


@pytest.mark.parametrize("body, status", [
    ({"messages": []}, 400), ({"messages": [{"role": "assistant", "content": "hi"}]}, 400),
    ({"messages": [{"role": "user", "content": 5}]}, 400), ({"messages": "hello"}, 400),
    (ask("   "), 400), (ask("\x00\x00"), 400),
])
def test_bad_requests_are_refused_clearly(tmp_path, body, status):
    client, bot = make_client(tmp_path)
    r = client.post("/v1/chat/completions", json=body, headers={"X-Session-Id": "x"})
    assert r.status_code == status and r.json()["error"]["message"]
    assert bot.sessions() == []  # nothing was created


def test_requests_without_a_session_broken_json_or_too_large(tmp_path):
    client, _ = make_client(tmp_path, max_body_bytes=2000)
    assert client.post("/v1/chat/completions", json=ask("hi there")).status_code == 400  # no session named
    r = client.post("/v1/chat/completions", content=b"{not json", headers={"X-Session-Id": "x"})
    assert r.status_code == 400
    deep = "[" * 5000 + "]" * 5000
    assert client.post("/v1/chat/completions", content=deep, headers={"X-Session-Id": "x"}).status_code == 413
    r = client.post("/v1/chat/completions", json=ask("a" * 5000), headers={"X-Session-Id": "x"})
    assert r.status_code == 413


def test_api_keys(tmp_path):
    client, _ = make_client(tmp_path, ["ok then"], api_key_hashes={hash_key("s3cret")})
    assert client.get("/health").status_code == 200  # no key needed
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        r = client.post("/v1/chat/completions", json=ask("hello friend"), headers={"X-Session-Id": "k", **headers})
        assert r.status_code == 401
        assert client.get("/v1/sessions/k", headers=headers).status_code == 401
    r = client.post("/v1/chat/completions", json=ask("hello friend"),
                    headers={"X-Session-Id": "k", "Authorization": "Bearer s3cret"})
    assert r.status_code == 200


def test_busy_answers_429_and_metrics_count(tmp_path):
    client, bot = make_client(tmp_path, ["one reply here"], max_waiting=1)
    session = bot._session("busy")
    with session.lock:  # a turn is running in this conversation
        r = client.post("/v1/chat/completions", json=ask("again"), headers={"X-Session-Id": "busy"})
    assert r.status_code == 429 and r.headers["retry-after"]
    client.post("/v1/chat/completions", json=ask("I am furious"), headers={"X-Session-Id": "m"})
    text = client.get("/metrics").text
    assert "empathetic_bot_turns_total 1" in text and 'empathetic_bot_refusals_total{reason="session_busy"} 1' in text
    assert 'empathetic_bot_turn_seconds_bucket{le="+Inf"} 1' in text


@pytest.mark.slow
def test_serve_over_loopback_with_a_key(tmp_path):
    """The real command, the default models, and an httpx client streaming from it."""
    import httpx

    keys = tmp_path / "keys"
    keys.write_text(hash_key("k1") + "\n")
    from bot.loadtest import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve", "--port", str(port), "--api-keys", str(keys),
                             "--store", str(tmp_path / "s.db"), "--max-new-tokens", "24", "--candidates", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None, "serve exited at start"
                time.sleep(0.5)
        headers = {"Authorization": "Bearer k1", "X-Session-Id": "loop"}
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=ask("I failed my exam and feel stupid", stream=True),
                          headers=headers, timeout=120) as r:
            assert r.status_code == 200
            lines = [line for line in r.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]" and json.loads(lines[-2][6:])["empathetic_bot"]["emotion"]["available"]
        assert httpx.get(f"{base}/v1/sessions/loop", headers=headers).json()["messages"]
        assert httpx.get(f"{base}/v1/sessions/loop").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_finished_turns_free_their_place(tmp_path):
    client, _ = make_client(tmp_path, [f"reply number {i}" for i in range(6)], max_waiting=1)
    for i in range(3):  # one place only: each turn, streamed or not, must give it back
        with client.stream("POST", "/v1/chat/completions", json=ask(f"message {i}", stream=True, user="s")) as r:
            assert r.status_code == 200 and list(r.iter_lines())
        assert client.post("/v1/chat/completions", json=ask(f"again {i}", user="s")).status_code == 200
    assert "empathetic_bot_waiting_turns 0" in client.get("/metrics").text


# -- rate limits ---------------------------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_parse_rate():
    from bot.service import Rate, parse_rate

    assert parse_rate("30/min") == Rate(30, 60.0, "30/min") and str(parse_rate("30/min")) == "30/min"
    assert parse_rate("2/s").seconds == 1.0 and parse_rate("500 / hours").seconds == 3600.0
    for off in ("0", "off", "", None, "0/min"):
        assert parse_rate(off) is None
    for bad in ("30", "ten/min", "3/week", "-1/min", "1/ms"):
        with pytest.raises(ValueError, match="30/min"):
            parse_rate(bad)


def test_token_buckets_refill_evenly_and_forget_full_ones():
    from bot.service import RateLimiter, parse_rate

    clock = FakeClock()
    limits = RateLimiter(parse_rate("3/min"), clock)
    assert [limits.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # a burst of three
    assert limits.take("a") == pytest.approx(20.0) and limits.take("b") == 0.0  # buckets are apart
    clock.now += 10
    assert limits.take("a") == pytest.approx(10.0)  # half a turn refilled: nothing taken
    clock.now += 10
    assert limits.take("a") == 0.0 and limits.take("a") == pytest.approx(20.0)
    limits.give_back("a")
    assert limits.take("a") == 0.0
    clock.now += 3600  # everything refilled: the next take drops the full buckets
    limits.take("c")
    assert set(limits._buckets) == {"c"}


def test_per_session_rate_limit(tmp_path):
    clock = FakeClock()
    client, bot = make_client(tmp_path, rate_per_key=None, rate_per_session="2/min", clock=clock)
    for i in range(2):
        assert client.post("/v1/chat/completions", json=ask(f"message {i} here", user="s")).status_code == 200
    before = bot.export_session("s")
    r = client.post("/v1/chat/completions", json=ask("one too many", user="s"))
    assert r.status_code == 429 and r.headers["retry-after"] == "30"
    assert r.json()["error"]["type"] == "session_rate_limited" and "conversation" in r.json()["error"]["message"]
    assert {**bot.export_session("s"), "exported": 0} == {**before, "exported": 0}  # nothing changed
    with client.stream("POST", "/v1/chat/completions", json=ask("streamed, too many", user="s", stream=True)) as r:
        assert r.status_code == 429
    assert client.post("/v1/chat/completions", json=ask("another talk", user="t")).status_code == 200
    clock.now += 30
    assert client.post("/v1/chat/completions", json=ask("later on", user="s")).status_code == 200
    assert 'empathetic_bot_refusals_total{reason="session_rate_limited"} 2' in client.get("/metrics").text


def test_per_key_rate_limit_creates_no_session(tmp_path):
    clock = FakeClock()
    keys = {hash_key("k1"), hash_key("k2")}
    client, bot = make_client(tmp_path, api_key_hashes=keys, rate_per_key="2/min", rate_per_session=None, clock=clock)
    k1, k2 = {"Authorization": "Bearer k1"}, {"Authorization": "Bearer k2"}
    for sid in ("a", "b"):
        assert client.post("/v1/chat/completions", json=ask("hello there", user=sid), headers=k1).status_code == 200
    r = client.post("/v1/chat/completions", json=ask("hello there", user="c"), headers=k1)
    assert r.status_code == 429 and r.json()["error"]["type"] == "key_rate_limited" and r.headers["retry-after"] == "30"
    assert "API key" in r.json()["error"]["message"]
    assert "c" not in bot.sessions() and bot.store.load("c") is None  # the refused turn created nothing
    assert client.post("/v1/chat/completions", json=ask("hello there", user="c"), headers=k2).status_code == 200
    assert 'empathetic_bot_refusals_total{reason="key_rate_limited"} 1' in client.get("/metrics", headers=k1).text


def test_without_keys_the_client_address_is_limited(tmp_path):
    client, _ = make_client(tmp_path, rate_per_key="1/hour", rate_per_session=None, clock=FakeClock())
    assert client.post("/v1/chat/completions", json=ask("hello there", user="a")).status_code == 200
    r = client.post("/v1/chat/completions", json=ask("hello there", user="b"))
    assert r.status_code == 429 and "client address" in r.json()["error"]["message"]
    assert r.headers["retry-after"] == "3600"


def test_a_turn_refused_as_busy_gives_its_rate_back(tmp_path):
    client, bot = make_client(tmp_path, rate_per_key="1/hour", rate_per_session="1/hour", clock=FakeClock())
    session = bot._session("busy")
    with session.lock:
        assert client.post("/v1/chat/completions", json=ask("again", user="busy")).status_code == 429
    assert client.post("/v1/chat/completions", json=ask("now it is free", user="busy")).status_code == 200


# -- the turn time limit and other processes ---------------------------------------------------------------


def slow_client(tmp_path):
    config = BotConfig()
    config.model.emotion_classifier = config.model.crisis_detector = config.model.ranker = None
    words = " ".join(f"word{i}" for i in range(80))
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(["That sounds hard.", words, words]),
                        emotion_classifier=KeywordClassifier(), store=SQLiteStore(tmp_path / "s.db"))
    return TestClient(create_app(bot, rate_per_key=None, rate_per_session=None)), bot


def test_a_turn_past_the_time_limit_gets_504_and_changes_nothing(tmp_path):
    client, bot = slow_client(tmp_path)
    assert client.post("/v1/chat/completions", json=ask("My dog died", user="s")).status_code == 200
    before = bot.store.read("s")
    bot.config.conversation.turn_timeout_s = 0.3  # the bot's own limit: serve sets it from --turn-timeout
    bot.reply_model.delay = 0.05  # 80 words: 4 s
    t0 = time.perf_counter()
    r = client.post("/v1/chat/completions", json=ask("I keep crying", user="s"))
    assert r.status_code == 504 and r.json()["error"]["type"] == "turn_timeout"
    assert "time limit (0.3 s)" in r.json()["error"]["message"] and time.perf_counter() - t0 < 2.5
    assert bot.store.read("s") == before and len(client.get("/v1/sessions/s").json()["messages"]) == 2
    with client.stream("POST", "/v1/chat/completions", json=ask("I keep crying", user="s", stream=True)) as r:
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    assert events[-1]["error"]["type"] == "turn_timeout" and "time limit" in events[-1]["error"]["message"]
    assert not any(e.get("choices", [{}])[0].get("delta", {}).get("content") for e in events)  # no text shown
    assert bot.store.read("s") == before
    text = client.get("/metrics").text
    assert 'empathetic_bot_refusals_total{reason="turn_timeout"} 2' in text and "empathetic_bot_waiting_turns 0" in text


def test_a_turn_that_lost_a_race_with_another_process_gets_409(tmp_path):
    client, bot = make_client(tmp_path, ["First.", "Second."])
    assert client.post("/v1/chat/completions", json=ask("first message", user="s")).status_code == 200
    other = EmpatheticBot(bot.config, reply_model=FakeReplyModel(["Other."]), emotion_classifier=KeywordClassifier(),
                          store=SQLiteStore(tmp_path / "s.db"))
    real_save = bot.store.save

    def save_after_the_other(session_id, snapshot, expected=None):
        other.chat("meanwhile elsewhere", session_id=session_id)  # the other process saves first
        return real_save(session_id, snapshot, expected)

    bot.store.save = save_after_the_other
    r = client.post("/v1/chat/completions", json=ask("second message", user="s"))
    assert r.status_code == 409 and r.json()["error"]["type"] == "conversation_conflict"
    bot.store.save = real_save
    messages = client.get("/v1/sessions/s").json()["messages"]
    assert [m["content"] for m in messages] == ["first message", "First.", "meanwhile elsewhere", "Other."]


def test_serve_options(monkeypatch):
    import bot.service
    from bot.cli import main
    from bot.service import Rate

    seen = {}
    monkeypatch.setattr(bot.service, "serve", lambda config, **kw: seen.update(config=config, **kw))
    assert main(["serve", "--store", "memory"]) == 0
    assert seen["config"].conversation.turn_timeout_s == 60.0
    assert seen["rate_per_key"] == Rate(30, 60.0, "30/min") and seen["rate_per_session"] == Rate(12, 60.0, "12/min")
    assert main(["serve", "--store", "memory", "--turn-timeout", "0", "--rate-per-key", "5/s",
                 "--rate-per-session", "off"]) == 0
    assert seen["config"].conversation.turn_timeout_s is None
    assert seen["rate_per_key"] == Rate(5, 1.0, "5/s") and seen["rate_per_session"] is None
    with pytest.raises(SystemExit):
        main(["serve", "--rate-per-key", "lots"])


def test_the_load_benchmark_counts_answers_refusals_and_latency_over_loopback(tmp_path):
    from bot.loadtest import format_report, run_phase, start_local_service

    _, bot = make_client(tmp_path, ["That sounds hard."] * 100)
    url, stop = start_local_service(bot, max_waiting=8)
    try:
        phase = run_phase(url, users=4, turns=3, headers={})
        summary = phase.summary()
        assert summary["turns_sent"] == summary["turns_answered"] == 12 and summary["failed"] == {}
        assert summary["turn_s"]["p50"] <= summary["turn_s"]["p95"] <= summary["turn_s"]["max"]
        assert summary["first_text_s"] is not None and summary["turns_per_s"] > 0
        assert len({r.user for r in phase.results}) == 4 and len(bot.history(bot.sessions()[0])) == 6
        bot.reply_model.delay = 0.05  # slow turns and one waiting place: some turns are refused as busy
        stop()
        url, stop = start_local_service(bot, max_waiting=1)
        crowded = run_phase(url, users=6, turns=2, headers={}).summary()
        assert crowded["failed"].get("429 busy", 0) > 0
        assert crowded["turns_answered"] + sum(crowded["failed"].values()) == 12
        assert "429 busy" in format_report({"url": url, "cpu_count": 2, "phases": [crowded]})
    finally:
        stop()


def test_a_store_that_fails_gets_503_and_the_service_recovers(tmp_path):
    import sqlite3

    class Flaky:  # the real store, and a switch that makes every call fail as a database outage would
        def __init__(self, inner):
            self.inner, self.down = inner, False

        def __getattr__(self, name):
            attr = getattr(self.inner, name)
            if not callable(attr):
                return attr

            def call(*a, **kw):
                if self.down:
                    raise sqlite3.OperationalError("unable to open database file")
                return attr(*a, **kw)
            return call

    config = BotConfig()
    config.model.emotion_classifier = config.model.crisis_detector = config.model.ranker = None
    store = Flaky(SQLiteStore(tmp_path / "s.db"))
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(["That sounds hard."] * 10),
                        emotion_classifier=KeywordClassifier(), store=store)
    client = TestClient(create_app(bot))
    assert client.post("/v1/chat/completions", json=ask("My exam went badly"), headers={"X-Session-Id": "a"}).status_code == 200
    store.down = True
    for r in (client.post("/v1/chat/completions", json=ask("Still sad"), headers={"X-Session-Id": "b"}),
              client.post("/v1/chat/completions", json=ask("Still sad"), headers={"X-Session-Id": "a"}),
              client.get("/v1/sessions/zzz"), client.delete("/v1/sessions/zzz")):
        assert r.status_code == 503, r.text
        assert r.json()["error"]["type"] == "store_unavailable"
        assert "try again" in r.json()["error"]["message"] and r.headers.get("retry-after")
    events = [json.loads(line[6:]) for line in client.post(
        "/v1/chat/completions", json=ask("Still sad", stream=True), headers={"X-Session-Id": "c"}).text.splitlines()
        if line.startswith("data: {")]
    assert "error" in events[-1]
    store.down = False
    r = client.post("/v1/chat/completions", json=ask("Better now"), headers={"X-Session-Id": "a"})
    assert r.status_code == 200 and len(bot.history("a")) == 4  # the failed turn left nothing behind
