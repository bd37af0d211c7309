"""The HTTP service: OpenAI-compatible chat completions (plain and streamed), sessions, keys, limits,
metrics. On stand-in models through FastAPI's test client, and once for real over loopback."""

import json
import socket
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
    config.model.emotion_classifier = config.model.crisis_detector = None
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_serve_over_loopback_with_a_key(tmp_path):
    """The real command, the default models, and an httpx client streaming from it."""
    import httpx

    keys = tmp_path / "keys"
    keys.write_text(hash_key("k1") + "\n")
    port = _free_port()
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
