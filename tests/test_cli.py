"""The command line, through real subprocesses."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "empathetic-bot"


def run(args, stdin=None, timeout=300):
    cmd = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "bot.cli"]
    return subprocess.run(cmd + args, input=stdin, capture_output=True, timeout=timeout, env=os.environ.copy())


def test_help_is_fast_and_lists_the_commands():
    t = time.perf_counter()
    p = run(["--help"])
    elapsed = time.perf_counter() - t
    assert p.returncode == 0
    out = p.stdout.decode()
    for verb in ("chat", "ui", "info", "bench"):
        assert verb in out
    # heavy imports are lazy: this is a sanity bound for a cold interpreter, not a benchmark
    assert elapsed < 5


def test_import_does_not_load_torch():
    code = "import sys, bot, bot.cli; print('torch' in sys.modules, 'gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_missing_model_gives_a_clear_error_and_no_traceback(tmp_path):
    p = run(["info", "--no-load", "--base-model", str(tmp_path / "nope")])
    err = p.stderr.decode()
    assert p.returncode == 1 and "error:" in err and "not found" in err and "Traceback" not in err


def test_info_lists_what_would_load_quickly_without_loading_it():
    p = run(["info", "--json"])
    assert p.returncode == 0, p.stderr.decode()
    report = json.loads(p.stdout)
    assert report["base_model"]["kind"] == "package"
    assert report["encoder"]["files"]
    assert report["emotion_classifier"]["kind"] == "package" and "emotion_tracking" not in report
    assert "loaded" not in report and report["plan"]["ranker"] == "empathy-ranker"
    assert report["plan"]["crisis detector"] == "rules + crisis-minilm"
    out = run(["info"]).stdout.decode()
    assert "backend: " in out and "candidates per turn: 4" in out and "--load" in out
    assert "openers: 100% of the candidates are written lines the emotion state chooses" in out
    assert out.count("adapter:") == 1
    assert json.loads(run(["info", "--no-load", "--json"]).stdout)["plan"]  # the old flag still works
    p = run(["info", "--no-load", "--json", "--emotion-classifier", ""])  # turned off on purpose
    assert "unavailable" in json.loads(p.stdout)["emotion_tracking"]


@pytest.mark.slow
def test_info_loads_and_reports_device_and_dtype():
    p = run(["info", "--load"])
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert "device: cpu" in out and "SmolLM2-135M-Instruct" in out
    assert "emotion classifier: GoEmotions emotion classifier" in out
    from bot.backends import llama_cpp_installed

    assert ("backend: llama-cpp" in out and "q8_0" in out) if llama_cpp_installed() else \
        ("backend: transformers" in out and "dtype: float32" in out)
    assert out.count("adapter:") == 1  # once, with the resolved files
    p = run(["info", "--load", "--backend", "transformers"])
    assert "backend: transformers" in p.stdout.decode() and "dtype: float32" in p.stdout.decode()


@pytest.mark.slow
def test_chat_holds_a_conversation_and_survives_bad_input():
    lines = [
        b"I failed my driving test again and I feel stupid.",
        b"\xff\xfe not utf-8 \xc3",          # invalid UTF-8
        b"",                                  # empty line
        b"   ",                               # whitespace only
        b"a" * 100_000,                       # huge
        "I feel 😢 but também um pouco melhor".encode(),
        b"/state",
        b"/why",
        b"/reset",
        b"Hello again.",
        b"/quit",
        b"this line is never read",
    ]
    p = run(["chat", "--max-new-tokens", "16", "--seed", "1"], stdin=b"\n".join(lines) + b"\n")
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert "Traceback" not in out + p.stderr.decode()
    bot_lines = [line for line in out.splitlines() if line.startswith("bot> ")]
    replies = [line for line in bot_lines if not line.startswith("bot> (")]
    assert len(replies) == 4, out  # first turn, the repaired invalid-UTF-8 line, the emoji line, after reset
    assert all(len(r) > len("bot> ") for r in replies)
    assert "not valid UTF-8" in out
    assert out.count("The message is empty") == 2
    assert "100,000 characters long" in out
    state = [line for line in out.splitlines() if line.startswith("state> ")]
    assert len(state) == 1 and "valence" in state[0] and "%" in state[0]
    assert any(line.startswith("why> ") and "%" in line for line in out.splitlines())
    assert "Conversation deleted" in out


@pytest.mark.slow
def test_bench_prints_the_figures():
    """The benchmark runs and reports every figure (its numbers are read by people, not asserted)."""
    p = run(["bench", "--max-new-tokens", "8", "--json"])
    assert p.returncode == 0, p.stderr.decode()
    result = json.loads(p.stdout)
    assert set(result) >= {"cold_start_s", "rss_mb", "first_token_ms_median", "tokens_per_s_median", "turns"}
    # distressed turns are answered by the written openers and the pool's replies (no model call); the glad
    # last one by the model
    assert len(result["turns"]) == 4 and any(not t["written"] and t["prompt_tokens"] > 0 for t in result["turns"])
    assert all(t["reason"] for t in result["turns"])  # every reply says why it was chosen


def test_cache_shows_and_clears_what_it_holds(tmp_path):
    (tmp_path / "llama-cpp").mkdir()
    (tmp_path / "llama-cpp" / "a-1.gguf").write_bytes(b"x" * 2048)
    (tmp_path / "merged" / "b-2").mkdir(parents=True)
    (tmp_path / "merged" / "b-2" / "model.safetensors").write_bytes(b"y" * 4096)
    out = run(["cache", "--cache-dir", str(tmp_path)]).stdout.decode()
    assert "llama-cpp: 2.0 KB in 1 item(s)" in out and "merged: 4.0 KB" in out and "total: 6.0 KB" in out
    p = run(["cache", "--cache-dir", str(tmp_path), "--clear", "merged"])
    assert p.returncode == 0 and "deleted" in p.stdout.decode()
    assert not (tmp_path / "merged").exists() and (tmp_path / "llama-cpp").exists()
    run(["cache", "--cache-dir", str(tmp_path), "--clear"])
    assert "is empty" in run(["cache", "--cache-dir", str(tmp_path)]).stdout.decode()


def test_cache_prune_deletes_what_a_removed_or_retrained_adapter_left_and_keeps_the_rest(tmp_path):
    from types import SimpleNamespace

    from bot.generation import merge_cache_name, record_merge

    cache = tmp_path / "cache"
    kept_adapter, removed_adapter = tmp_path / "kept", tmp_path / "removed"
    for folder in (kept_adapter, removed_adapter):
        folder.mkdir()
        (folder / "adapter_model.safetensors").write_bytes(folder.name.encode() * 100)
    (cache / "llama-cpp").mkdir(parents=True)
    paths = {}
    for folder in (kept_adapter, removed_adapter):
        name = merge_cache_name("base|q8_0", SimpleNamespace(location=str(folder)))
        paths[folder.name] = cache / "llama-cpp" / f"{name}.gguf"
        paths[folder.name].write_bytes(b"g" * 1024)
        record_merge(paths[folder.name], str(folder), "base|q8_0")
    unknown = cache / "llama-cpp" / "0000-1111.gguf"  # made before merges were recorded
    unknown.write_bytes(b"u")
    import shutil

    shutil.rmtree(removed_adapter)
    out = run(["cache", "--cache-dir", str(cache)]).stdout.decode()
    assert "llama-cpp: " in out and "in 3 item(s)" in out and ".sources.json" not in out
    p = run(["cache", "--cache-dir", str(cache), "--prune"])
    assert p.returncode == 0, p.stderr.decode()
    assert not paths["removed"].exists() and paths["kept"].exists() and unknown.exists()
    assert "1 item(s) that do not say what they were made from were kept" in p.stdout.decode()
    # a retrained adapter (other weights in the same folder) leaves its old merge to prune as well
    (kept_adapter / "adapter_model.safetensors").write_bytes(b"retrained")
    run(["cache", "--cache-dir", str(cache), "--prune"])
    assert not paths["kept"].exists() and unknown.exists()
