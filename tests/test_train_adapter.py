"""LoRA and AdaLoRA training of the reply adapter: a few steps on CPU on the fixture conversations."""

import json
from pathlib import Path

import pytest

from finetune.dialogue_data import prepare, read_jsonl

FIXTURE = Path(__file__).resolve().parent.parent / "data" / "fixtures" / "conversations.jsonl"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sft_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("sft")
    prepare([read_jsonl(FIXTURE)], out, progress=False)
    return out


def run(sft_data, out, **overrides):
    from finetune.train_adapter import AdapterConfig, train

    settings = dict(data=str(sft_data), output=str(out), max_steps=4, batch_size=4, lr=2e-3, max_length=384,
                    eval_every=100, save_every=2, threads=2)
    cfg = AdapterConfig(**{**settings, **overrides})
    return train(cfg)


@pytest.fixture(scope="module")
def lora_run(sft_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora")
    return out, run(sft_data, out)


def test_lora_lowers_validation_loss_and_saves_a_peft_adapter(lora_run):
    out, summary = lora_run
    assert summary["valid_losses"][-1]["loss"] < summary["valid_losses"][0]["loss"]
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert summary["tokens_per_s"] > 0 and summary["steps"] == 4 and summary["data"]["train.jsonl"]["sha256"]


def test_the_bot_loads_the_adapter_and_replies(lora_run):
    """The first start merges the adapter and caches the result; the next start reads the merged copy
    and has exactly the same weights and replies."""
    import shutil

    import torch

    from bot import BotConfig, EmpatheticBot

    out, _ = lora_run
    config = BotConfig()
    config.model.adapter = str(out)
    config.model.backend = "transformers"  # its merged-copy cache; llama.cpp's: tests/test_backends.py
    config.model.emotion_classifier = None
    config.generation.max_new_tokens = 12
    config.generation.temperature = 0.0
    first = EmpatheticBot(config)
    merged = Path(first.reply_model.loaded_from)
    try:
        assert "merged" not in merged.parts  # merged now, from the base and the adapter
        assert first.info()["reply_model"]["adapter"].endswith(str(out))
        message = "I lost my keys and I'm so stressed."
        reply = first.chat(message).text
        assert reply.strip()
        second = EmpatheticBot(config)
        merged = Path(second.reply_model.loaded_from)
        assert merged.parent.name == "merged" and (merged / "config.json").is_file()
        for (name, a), (_, b) in zip(first.reply_model.model.state_dict().items(),
                                     second.reply_model.model.state_dict().items()):
            assert torch.equal(a, b), name
        assert second.chat(message).text == reply
        (merged / "config.json").write_text("{")  # a broken copy is rebuilt, not fatal
        third = EmpatheticBot(config)
        assert "merged" not in Path(third.reply_model.loaded_from).parts
        assert json.loads((merged / "config.json").read_text())["model_type"] == "llama"
    finally:
        if merged.parent.name == "merged":
            shutil.rmtree(merged, ignore_errors=True)  # one copy of the model per trained test adapter otherwise


def test_resume_continues_from_the_checkpoint(lora_run, sft_data, tmp_path):
    out, _ = lora_run
    state = json.loads((out / "checkpoint" / "trainer_state.json").read_text())
    assert state["step"] == 4
    resumed = run(sft_data, tmp_path, resume=str(out / "checkpoint"), max_steps=6)
    assert resumed["steps"] == 6 and [x["step"] for x in resumed["train_losses"]] == [5, 6]


def test_adalora_trains_with_its_rank_schedule(sft_data, tmp_path, lora_run):
    summary = run(sft_data, tmp_path, method="adalora", r=4, adalora_init_r=8)
    assert summary["valid_losses"][-1]["loss"] < summary["valid_losses"][0]["loss"]
    # validation is plain cross-entropy, without AdaLoRA's orthogonality term: before training it equals LoRA's
    assert summary["valid_losses"][0]["loss"] == pytest.approx(lora_run[1]["valid_losses"][0]["loss"], rel=1e-4)
    assert json.loads((tmp_path / "adapter_config.json").read_text())["peft_type"] == "ADALORA"


def test_qlora_needs_cuda(sft_data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("covered by a GPU run")
    with pytest.raises(SystemExit, match="QLoRA needs CUDA"):
        run(sft_data, tmp_path, method="qlora")


def test_shipping_rounds_to_float16_writes_a_card_and_the_bot_gives_the_same_replies(lora_run, tmp_path):
    import torch
    from safetensors.torch import load_file

    from bot import BotConfig, EmpatheticBot
    from finetune.ship_adapter import ship

    out, summary = lora_run
    comparison = {"labels": ["base", "adapter"],
                  "figures": {"BLEU": {"values": [0.1, 0.5], "better": "higher"}}}
    (tmp_path / "compare.json").write_text(json.dumps(comparison))
    shipped = ship(out, tmp_path / "shipped", compare=tmp_path / "compare.json")
    weights = load_file(str(shipped / "adapter_model.safetensors"))
    assert all(w.dtype == torch.float16 for w in weights.values())
    assert (shipped / "adapter_model.safetensors").stat().st_size < 0.6 * (out / "adapter_model.safetensors").stat().st_size
    card = (shipped / "README.md").read_text()
    assert "non-commercial" in card and "python -m finetune.train_adapter --data" in card and "| BLEU | 0.100 | 0.500 |" in card

    def reply(adapter):
        config = BotConfig()
        # the float path: llama.cpp re-quantizes the merged weights (q8_0), where any change to the adapter
        # may move a weight across a quantization step and flip a near-tie of this few-step adapter
        config.model.backend = "transformers"
        config.model.adapter = str(adapter)
        config.model.emotion_classifier = None
        config.generation.max_new_tokens = 10
        config.generation.temperature = 0
        config.generation.retrieved = 0  # the model's own reply, not a pooled human one
        return EmpatheticBot(config).chat("My sister stopped talking to me.").text

    assert reply(shipped) == reply(out)  # float16 rounding of the adapter does not change greedy replies here
