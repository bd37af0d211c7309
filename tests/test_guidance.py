"""Guidance at decoding towards the emotion state: the logits combination, the unconditioned prompt,
how the bot passes it, and (slow) both real backends."""

import numpy as np
import pytest

from bot import BotConfig, EmpatheticBot
from bot.config import GenerationConfig
from bot.emotion import EmotionScore, EmotionState
from bot.guidance import guided, log_softmax
from bot.prompting import PromptBook

from fakes import FakeRanker, FakeReplyModel, KeywordClassifier

GRIEF = EmotionState(available=True, turn=1, top=(EmotionScore("grief", 0.8, "new"),), valence="negative",
                     intensity=0.8, probabilities={"grief": 0.8, "neutral": 0.2})


def test_guidance_is_u_plus_gamma_times_c_minus_u_on_log_probabilities():
    c, u = np.array([2.0, 1.0, 0.0]), np.array([0.0, 1.0, 2.0])
    lc, lu = log_softmax(c), log_softmax(u)
    assert np.allclose(np.exp(lc).sum(), 1.0)
    assert np.allclose(guided(c, u, 1.0), lc)  # gamma 1: plain decoding
    assert np.allclose(guided(c, u, 0.0), lu)  # gamma 0: the prompt without the state
    g = guided(c, u, 2.0)
    assert np.allclose(g, lu + 2.0 * (lc - lu))
    assert g.argmax() == 0 and g[0] - g[2] > lc[0] - lc[2]  # what the state favours, favoured more
    # the same formula as transformers' own processor (used by the transformers backend)
    import torch
    from transformers.generation.logits_process import UnbatchedClassifierFreeGuidanceLogitsProcessor

    class Stub:  # returns the unconditioned logits
        def __call__(self, input_ids, **kwargs):
            return {"logits": torch.tensor(u[None, None], dtype=torch.float32), "cache": None}

    out = type("Out", (dict,), {"logits": property(lambda self: self["logits"])})
    proc = UnbatchedClassifierFreeGuidanceLogitsProcessor(2.0, lambda *a, **k: out(Stub()(*a, **k)))
    got = proc(torch.tensor([[5]]), torch.tensor(c[None], dtype=torch.float32))[0].numpy()
    assert np.allclose(got, g, atol=1e-5)


def test_the_unconditioned_prompt_drops_the_state_line_guidance_and_tag(tmp_path):
    book = PromptBook()
    conditioned = book.render([], "My dog died.", GRIEF)
    bare = book.render([], "My dog died.", GRIEF, stateless=True)
    assert "grief" in conditioned[0]["content"] and "grief" not in bare[0]["content"].lower()
    assert conditioned[0]["content"].startswith(bare[0]["content"])  # the persona alone, then the state
    assert bare[1:] == conditioned[1:]
    # the compact-tag form: the tag goes too
    folder = tmp_path / "prompts"
    import shutil

    shutil.copytree(book.dir, folder)
    (folder / "user.md").write_text("{state_tag} {input}")
    tagged = PromptBook(folder)
    assert tagged.render([], "My dog died.", GRIEF)[-1]["content"].startswith("[feels: grief 80%")
    assert tagged.render([], "My dog died.", GRIEF, stateless=True)[-1]["content"] == "My dog died."


class RecordingModel(FakeReplyModel):
    """Records what the bot hands the reply model for guidance."""

    def candidates(self, messages, settings, n, stats, cancel=None, **kwargs):
        self.seen = kwargs.get("unconditioned"), messages
        return super().candidates(messages, settings, n, stats, cancel)


@pytest.mark.parametrize("gamma", [1.0, 1.5])
def test_the_bot_hands_the_stateless_prompt_only_when_guidance_is_on(gamma):
    config = BotConfig()
    config.generation.guidance = gamma
    model = RecordingModel(["I'm so sorry. What was he like?"] * 4)
    bot = EmpatheticBot(config, reply_model=model, emotion_classifier=KeywordClassifier(), ranker=FakeRanker())
    bot.chat("I lost my job today and I'm sad", session_id="s")
    bot.chat("My dog died too, I'm so sad", session_id="s")
    unconditioned, messages = model.seen
    if gamma == 1:
        assert unconditioned is None
        return
    assert [m["role"] for m in unconditioned] == [m["role"] for m in messages]  # the same turns kept
    assert unconditioned[1:] == messages[1:]
    assert "sadness" in messages[0]["content"] and "sadness" not in unconditioned[0]["content"]
    assert bot.prompt([{"role": "user", "content": "I'm so sad"}], stateless=True)[0][0]["content"] == \
        unconditioned[0]["content"]


@pytest.mark.parametrize("value", [-0.1, 5.5])
def test_guidance_out_of_range_is_refused(value):
    with pytest.raises(ValueError, match="guidance"):
        GenerationConfig(guidance=value).validate()


MESSAGES = [{"role": "system", "content": "You are Sol, a warm listener.\nThe person seems to feel: grief 80%."},
            {"role": "user", "content": "I found the ring my dad gave me."}]
BARE = [{"role": "system", "content": "You are Sol, a warm listener."}, MESSAGES[1]]


@pytest.mark.slow
def test_llama_cpp_guidance_near_one_keeps_the_reply_and_changes_it_above():
    from bot.backends import LlamaCppReplyModel, llama_cpp_installed
    from bot.config import ModelConfig
    from bot.generation import StreamStats

    if not llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed")
    model = LlamaCppReplyModel(ModelConfig(), threads=2)
    plain = GenerationConfig(seed=3, max_new_tokens=16)
    want = model.candidates(MESSAGES, plain, 2, StreamStats())
    near = GenerationConfig(seed=3, max_new_tokens=16, guidance=1.000001)
    # the second context runs and the guided scores are what is sampled from (gamma ~1: the same draws)
    assert model.candidates(MESSAGES, near, 2, StreamStats(), unconditioned=BARE)[0] == want[0]
    strong = GenerationConfig(seed=3, max_new_tokens=16, guidance=3.0)
    assert model.candidates(MESSAGES, strong, 2, StreamStats(), unconditioned=BARE) != want
    assert model._uncond_llm is not None and model.describe()["guidance"] == "supported"


@pytest.mark.slow
def test_guided_perplexity_at_gamma_one_is_the_plain_perplexity():
    from bot.generation import ReplyModel
    from bot.config import ModelConfig
    from finetune.train_adapter import IGNORE, tokenize_example

    model = ReplyModel(ModelConfig(backend="transformers"))
    ids, labels = tokenize_example(model.tokenizer, MESSAGES, "I'm so sorry. Tell me about him.", 2048)
    bare, _ = tokenize_example(model.tokenizer, BARE, "I'm so sorry. Tell me about him.", 2048)
    n = sum(1 for x in labels if x != IGNORE)
    one, two = model.guided_nll(ids, bare, n, (1.0, 2.0))
    assert one == pytest.approx(model.sequence_nll(ids, labels, IGNORE), rel=1e-4)
    assert two != pytest.approx(one)
    with pytest.raises(ValueError):
        model.guided_nll(ids, bare[:-1], n, (1.0,))


def test_the_guided_perplexity_summary_gives_each_gamma_and_its_paired_ratio():
    from eval.guidance import summarise

    rows = [{"tokens": 10, "nll_g1": 20.0, "nll_g2": 22.0}, {"tokens": 5, "nll_g1": 10.0, "nll_g2": 10.5}]
    out = summarise(rows, (1.0, 2.0), samples=50)
    assert out["n"] == 2 and out["tokens"] == 15
    assert out["gammas"]["1"]["perplexity"] == pytest.approx(np.exp(30 / 15))
    assert out["gammas"]["2"]["ratio_to_1"] == pytest.approx(np.exp(32.5 / 15) / np.exp(30 / 15))
    assert out["gammas"]["1"]["ratio_to_1"] == 1.0
