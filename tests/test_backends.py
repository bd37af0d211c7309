"""Reply backends: the choice of backend, the adapter merged into a GGUF file, and llama.cpp agreeing
with transformers on the same weights."""

import json
import logging
import threading

import numpy as np
import pytest

from bot import BotConfig
from bot.backends import llama_cpp_installed, llama_cpp_unsuitable, load_reply_model
from bot.config import GenerationConfig, ModelConfig
from bot.errors import ModelNotFoundError
from bot.generation import StreamStats
from bot.gguf_merge import UnsupportedMerge, _permute, read_lora
from bot.resolve import resolve_adapter, resolve_base_model

needs_llama = pytest.mark.skipif(not llama_cpp_installed(), reason="llama-cpp-python is not installed")

MESSAGES = [
    {"role": "system", "content": "You are Sol, a kind listener."},
    {"role": "user", "content": "I got the job!!! I can't believe it 😊 — naïve café\n\tnew line"},
    {"role": "assistant", "content": "That's wonderful! Tell me more."},
    {"role": "user", "content": "My dog died this morning. I keep looking at his bowl."},
]


def test_backend_and_gguf_type_are_validated():
    with pytest.raises(ValueError, match="backend"):
        BotConfig.from_dict({"model": {"backend": "vllm"}})
    with pytest.raises(ValueError, match="gguf_type"):
        BotConfig.from_dict({"model": {"gguf_type": "q4_1"}})  # measured: loses the adapter
    assert BotConfig.from_dict({"model": {"backend": "llama-cpp", "gguf_type": "f16"}}).model.gguf_type == "f16"


def test_permute_is_the_converters_row_order():
    # 2 heads of 4 rows: llama.cpp stores each head's rows as (0, 2, 1, 3): the rotary halves interleaved
    w = np.arange(8, dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    assert _permute(w, 2)[:, 0].tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def _adapter(tmp_path, **config):
    from safetensors.numpy import save_file

    base = {"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj"]}
    (tmp_path / "adapter_config.json").write_text(json.dumps({**base, **config}))
    save_file({"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": np.ones((2, 8), np.float32),
               "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": np.ones((8, 2), np.float32)},
              str(tmp_path / "adapter_model.safetensors"))
    return tmp_path


def test_read_lora_maps_names_and_scale(tmp_path):
    lora, scale, _ = read_lora(_adapter(tmp_path))
    assert list(lora) == ["blk.0.attn_q.weight"] and scale == 2.0
    assert read_lora(_adapter(tmp_path, use_rslora=True))[1] == pytest.approx(4 / np.sqrt(2))


@pytest.mark.parametrize("config, message", [({"peft_type": "ADALORA"}, "only LoRA"), ({"use_dora": True}, "DoRA"),
                                             ({"modules_to_save": ["lm_head"]}, "modules_to_save")])
def test_read_lora_refuses_what_it_cannot_merge(tmp_path, config, message):
    with pytest.raises(UnsupportedMerge, match=message):
        read_lora(_adapter(tmp_path, **config))


def test_auto_falls_back_to_transformers_with_one_log_line(monkeypatch, caplog):
    import bot.backends as backends

    monkeypatch.setattr(backends, "llama_cpp_installed", lambda: False)
    assert "not installed" in llama_cpp_unsuitable(ModelConfig())

    class Stand:
        def __init__(self, config):
            self.config = config

    monkeypatch.setattr("bot.generation.ReplyModel", Stand)
    with caplog.at_level(logging.INFO, logger="bot.backends"):
        model = load_reply_model(BotConfig())
    assert isinstance(model, Stand)
    assert sum("llama.cpp not used" in r.getMessage() for r in caplog.records) == 1
    config = BotConfig()
    config.model.backend = "llama-cpp"
    with pytest.raises(ModelNotFoundError, match="not installed"):
        load_reply_model(config)


@needs_llama
def test_llama_cpp_serves_only_what_it_can(tmp_path):
    assert llama_cpp_unsuitable(ModelConfig()) is None  # the embedded GGUF base + the shipped LoRA
    assert "not a local GGUF" in llama_cpp_unsuitable(ModelConfig(base_model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    assert "CPU" in llama_cpp_unsuitable(ModelConfig(device="cuda"))
    assert "only LoRA" in llama_cpp_unsuitable(ModelConfig(adapter=str(_adapter(tmp_path, peft_type="ADALORA"))))


@pytest.mark.slow
def test_merged_gguf_equals_the_peft_merge(tmp_path):
    """The adapter merged into the GGUF file (float tensors) gives transformers the same logits as PEFT's own
    merge: the names, the scale and llama.cpp's q/k row order are right."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from bot.gguf_merge import merge_lora_into_gguf

    base = resolve_base_model("smollm2-135m")
    adapter = resolve_adapter("empathy-lora")
    summary = merge_lora_into_gguf(f"{base.location}/{base.gguf_file}", adapter.location, tmp_path / "m.gguf", "f32")
    assert summary["tensors_merged"] == 210
    merged = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="m.gguf", dtype=torch.float32)
    plain = AutoModelForCausalLM.from_pretrained(base.location, gguf_file=base.gguf_file, dtype=torch.float32)
    ids = torch.tensor([[1, 504, 3145, 4012, 451, 3464, 30, 339, 2824, 2570, 418, 637, 7226, 30]])
    with torch.no_grad():
        want = PeftModel.from_pretrained(plain, adapter.location).merge_and_unload()(ids).logits
        got = merged(ids).logits
    assert (got - want).abs().max().item() < 1e-3


@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory):
    """The default model (base + shipped adapter) in llama.cpp (adapter merged as f32) and in transformers."""
    if not llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed")
    from bot.backends import LlamaCppReplyModel
    from bot.generation import ReplyModel

    config = ModelConfig(gguf_type="f32", cache_dir=str(tmp_path_factory.mktemp("cache")))
    return LlamaCppReplyModel(config), ReplyModel(ModelConfig())


@pytest.mark.slow
def test_llama_cpp_agrees_with_transformers(llama_pair):
    fast, ref = llama_pair
    assert fast.encode(MESSAGES) == ref.encode(MESSAGES)
    assert fast.count_tokens(MESSAGES) == ref.count_tokens(MESSAGES)
    # next-token logits after the same prompt: llama.cpp keeps its attention cache in float16, so they
    # differ a little (0.5 at most here, on logits near 32), and greedy replies can part at a near tie
    import torch

    ids = ref.encode(MESSAGES)
    with torch.no_grad():
        want = ref.model(torch.tensor([ids])).logits[0, -1].numpy()
    fast.llm.reset()
    fast.llm.eval(ids)
    got = np.ctypeslib.as_array(fast.llm._ctx.get_logits(), shape=(fast.llm.n_vocab(),)).copy()
    assert np.abs(got - want).max() < 1.0
    assert int(got.argmax()) in np.argsort(-want)[:3].tolist()
    greedy = GenerationConfig(temperature=0, max_new_tokens=40, repetition_penalty=1.0)
    a, b = StreamStats(), StreamStats()
    assert len(fast.candidates(MESSAGES, greedy, 4, a)) == len(ref.candidates(MESSAGES, greedy, 4, b)) == 1
    assert a.new_tokens > 0 and a.prompt_tokens == b.prompt_tokens
    from finetune.train_adapter import IGNORE, tokenize_example

    ids, labels = tokenize_example(fast.tokenizer, MESSAGES[:2], "That's wonderful! Tell me more.", 2048)
    assert (ids, labels) == tokenize_example(ref.tokenizer, MESSAGES[:2], "That's wonderful! Tell me more.", 2048)
    # within 2% on one short reply (over 200 validation replies the mean differs by 0.0005 nats a token)
    assert fast.sequence_nll(ids, labels, IGNORE) == pytest.approx(ref.sequence_nll(ids, labels, IGNORE), rel=2e-2)
    assert fast.describe()["backend"] == "llama-cpp" and ref.describe()["backend"] == "transformers"


@pytest.mark.slow
def test_llama_cpp_candidates_sampling_length_and_cancel(llama_pair):
    fast, _ = llama_pair
    settings = GenerationConfig(max_new_tokens=12, seed=7)
    stats = StreamStats()
    first = fast.candidates(MESSAGES, settings, 3, stats)
    assert len(first) == 3 and stats.new_tokens <= 36
    assert fast.candidates(MESSAGES, settings, 3, StreamStats()) == first  # the seed fixes them
    fast.llm.reset()  # as after a start, nothing cached: the prompt is read afresh, and the same replies come
    assert fast.candidates(MESSAGES, settings, 3, StreamStats()) == first
    assert all(finished or len(fast.llm.tokenize(t.encode(), add_bos=False)) <= 13 for t, finished in first)
    cancel = threading.Event()
    cancel.set()
    stats = StreamStats()
    out = fast.candidates(MESSAGES, settings, 3, stats, cancel)
    assert len(out) == 1 and stats.stopped == "cancelled"  # stops after the token in flight


@pytest.mark.slow
def test_both_backends_continue_a_written_opener(llama_pair):
    settings = GenerationConfig(max_new_tokens=12, seed=3)
    openers = ["That sounds so frustrating.", "Ugh, that's really frustrating."]
    for model in llama_pair:
        stats = StreamStats()
        out = model.candidates(MESSAGES, settings, 3, stats, openers=openers)
        assert len(out) == 3 and [t.startswith(o) for (t, _), o in zip(out, openers)] == [True, True]
        assert all(len(t) > len(o) for (t, _), o in zip(out, openers))  # the model wrote on after each
        assert stats.new_tokens <= 36  # at most 12 generated tokens each
        long = ["That sounds so frustrating, and I can only imagine how long and tiring and draining the whole "
                "thing must have been for you and for everyone else around you this week."]  # 30+ tokens
        counted = StreamStats()
        model.candidates(MESSAGES, settings, 1, counted, openers=long)
        assert counted.new_tokens <= 12  # the opener's 30-odd tokens were given, not generated
        assert model.candidates(MESSAGES, settings, 3, StreamStats(), openers=openers) == out  # seeded


@needs_llama
@pytest.mark.slow
def test_the_merged_file_is_cached_and_replaced_when_the_adapter_changes(tmp_path):
    import shutil

    from bot.backends import LlamaCppReplyModel

    adapter = tmp_path / "adapter"
    shutil.copytree(resolve_adapter("empathy-lora").location, adapter)
    config = ModelConfig(adapter=str(adapter), cache_dir=str(tmp_path / "cache"))
    first = LlamaCppReplyModel(config).model_file
    stamp = first.stat().st_mtime_ns
    assert LlamaCppReplyModel(config).model_file == first and first.stat().st_mtime_ns == stamp  # read, not rewritten
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**cfg, "lora_alpha": cfg["lora_alpha"] / 2}))
    second = LlamaCppReplyModel(config).model_file
    assert second != first and second.is_file() and not first.exists()  # one merge per adapter folder
    from bot.cli import run_cache

    run_cache(config.cache_dir, None, prune=True)
    assert second.is_file()  # its adapter is still there
    shutil.rmtree(adapter)
    run_cache(config.cache_dir, None, prune=True)
    assert not second.exists()  # a removed adapter's merge is pruned
