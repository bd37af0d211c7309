"""The controllability check: a hand-set emotion state reaches the prompt, and the table reads the replies."""

import pytest

from bot import BotConfig, EmpatheticBot
from eval.controllability import markdown, run, set_state

from bot.crisis_model import CrisisDetector
from fakes import FakeCrisisClassifier, FakeReplyModel, KeywordClassifier


class StateEcho(FakeReplyModel):
    """Answers sadly when the prompt carries grief guidance, happily otherwise: a model that follows the state."""

    def candidates(self, messages, settings, n, stats, cancel=None):
        sad = "grieving" in messages[0]["content"]
        return [("I am so sad for you." if sad else "I am so happy for you.", True)] * n


class StateBlind(FakeReplyModel):
    def candidates(self, messages, settings, n, stats, cancel=None):
        return [("I am so happy for you.", True)] * n


def make_bot(model):
    config = BotConfig()
    config.model.ranker = None
    return EmpatheticBot(config, reply_model=model, emotion_classifier=KeywordClassifier(),
                         crisis_detector=CrisisDetector(FakeCrisisClassifier()))


def test_a_set_state_is_what_the_prompt_carries():
    bot = make_bot(StateBlind())
    grief = bot.prompt([{"role": "user", "content": "I found my dad's ring."}], state=set_state("grief"))[0]
    joy = bot.prompt([{"role": "user", "content": "I found my dad's ring."}], state=set_state("joy"))[0]
    assert "grief 80%" in grief[0]["content"] and "grieving" in grief[0]["content"]
    assert "joy 80%" in joy[0]["content"] and "grieving" not in joy[0]["content"]


def test_a_model_that_follows_the_state_shows_the_contrast_and_one_that_ignores_it_does_not():
    follows = run(make_bot(StateEcho()), samples=2, contexts=["I saw my old teacher today."] * 3)
    assert follows["contrast"]["sadness_grief_minus_joy"] > 0.5 and follows["contrast"]["joy_joy_minus_grief"] > 0.5
    assert follows["contrast"]["replies_differ_grief_vs_joy"] == 1.0
    assert "| grief |" in markdown(follows)
    blind = run(make_bot(StateBlind()), samples=2, contexts=["I saw my old teacher today."] * 3)
    assert blind["contrast"]["sadness_grief_minus_joy"] == pytest.approx(0.0)
    assert blind["contrast"]["replies_differ_grief_vs_joy"] == 0.0


@pytest.mark.slow
def test_the_shipped_model_answers_grief_and_joy_differently(real_bot):
    """A loose criterion on the real default model: with grief set, the replies carry more sadness than with
    joy set, and with joy more joy (docs/emotions.md has the full table)."""
    result = run(real_bot, samples=2, states=("grief", "joy"))
    assert result["contrast"]["sadness_grief_minus_joy"] > 0.03
    assert result["contrast"]["joy_joy_minus_grief"] > 0.03
    assert result["contrast"]["replies_differ_grief_vs_joy"] >= 0.5
