"""The OpenAI-compatible backend against a real server on loopback (llama-cpp-python's own server
serving the default GGUF), and its errors when the server is missing or refuses."""

import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from bot import BotConfig, EmpatheticBot
from bot.backends import OpenAIReplyModel, load_reply_model
from bot.config import GenerationConfig, ModelConfig
from bot.errors import GenerationError
from bot.generation import StreamStats
from bot.resolve import resolve_base_model
from tests.fakes import KeywordClassifier

MESSAGES = [{"role": "system", "content": "You are Sol, a kind listener."},
            {"role": "user", "content": "My dog died this morning. I keep looking at his bowl."}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_backend_needs_an_address():
    with pytest.raises(ValueError, match="base_url"):
        BotConfig.from_dict({"model": {"backend": "openai"}})


def test_unreachable_server_is_a_clear_error():
    config = BotConfig.from_dict({"model": {"backend": "openai", "base_url": f"http://127.0.0.1:{_free_port()}/v1"}})
    model = load_reply_model(config)
    assert isinstance(model, OpenAIReplyModel) and model.describe()["backend"] == "openai"
    with pytest.raises(GenerationError, match="could not reach the reply server"):
        model.candidates(MESSAGES, GenerationConfig(), 2, StreamStats())


def test_prompt_tokens_are_over_counted_never_under():
    model = OpenAIReplyModel(ModelConfig(backend="openai", base_url="http://127.0.0.1:9/v1"))
    text = "I keep looking at his bowl and I can't stop crying. " * 10
    assert model.count_tokens([{"role": "user", "content": text}]) > len(text.split()) * 1.3


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    base = resolve_base_model("smollm2-135m")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", f"{base.location}/{base.gguf_file}",
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "smollm2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("the llama.cpp server exited at start")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the llama.cpp server did not start in 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.slow
def test_candidates_from_a_real_server(server):
    model = OpenAIReplyModel(ModelConfig(backend="openai", base_url=server, served_model="smollm2"))
    stats = StreamStats()
    out = model.candidates(MESSAGES, GenerationConfig(max_new_tokens=30, seed=3), 3, stats)
    assert len(out) == 3 and all(isinstance(t, str) and isinstance(f, bool) for t, f in out)
    assert any(t for t, _ in out) and 0 < stats.new_tokens <= 90 and stats.generate_s > 0
    cut = model.candidates(MESSAGES, GenerationConfig(max_new_tokens=3, seed=3), 1, StreamStats())
    assert cut[0][1] is False  # stopped by the length limit: not finished
    cancel = threading.Event()
    cancel.set()
    stats = StreamStats()
    assert len(model.candidates(MESSAGES, GenerationConfig(max_new_tokens=30), 3, stats, cancel)) <= 1
    assert stats.stopped == "cancelled"


@pytest.mark.slow
def test_the_bot_talks_through_a_real_server(server):
    config = BotConfig.from_dict({"model": {"backend": "openai", "base_url": server, "served_model": "smollm2",
                                            "ranker": "", "crisis_detector": ""},
                                  "generation": {"candidates": 2, "max_new_tokens": 30, "seed": 1}})
    bot = EmpatheticBot(config, emotion_classifier=KeywordClassifier())
    reply = bot.chat("My landlord ignored my emails again and I'm so tired of it.")
    assert reply.text and reply.timings["backend"] == "openai" and reply.timings["candidates"] == 2
    assert bot.info()["reply_model"]["backend"] == "openai"
