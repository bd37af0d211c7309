"""The emotion-classifier path, end to end, with an untrained head on the embedded encoder.

The head is random, so this checks plumbing (loading, label names, multi-label probabilities, the
tracker and the prompt receiving them), not accuracy; the trained classifier has its own tests.
"""

import pytest

from bot import BotConfig, EmpatheticBot
from bot.emotion import GOEMOTIONS_LABELS, EmotionClassifier
from bot.errors import ModelNotFoundError
from bot.resolve import resolve_encoder
from fakes import FakeReplyModel


@pytest.fixture(scope="module")
def untrained_classifier_dir(tmp_path_factory):
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    torch.manual_seed(0)
    enc = resolve_encoder(None).location
    folder = tmp_path_factory.mktemp("clf")
    model = BertForSequenceClassification.from_pretrained(
        enc, num_labels=len(GOEMOTIONS_LABELS), id2label=dict(enumerate(GOEMOTIONS_LABELS)),
        label2id={l: i for i, l in enumerate(GOEMOTIONS_LABELS)}, problem_type="multi_label_classification")
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(enc).save_pretrained(folder)
    return folder


def test_classifier_returns_independent_probabilities_per_label(untrained_classifier_dir):
    clf = EmotionClassifier(str(untrained_classifier_dir))
    assert clf.multi_label and tuple(clf.labels) == GOEMOTIONS_LABELS
    out = clf.predict(["I am so happy for you!", "This is awful."])
    assert len(out) == 2 and set(out[0]) == set(GOEMOTIONS_LABELS)
    assert all(0.0 <= p <= 1.0 for row in out for p in row.values())
    assert out[0] != out[1]


def test_bot_with_a_classifier_tracks_state_into_reply_and_prompt(untrained_classifier_dir):
    config = BotConfig()
    config.model.emotion_classifier = str(untrained_classifier_dir)
    bot = EmpatheticBot(config, reply_model=FakeReplyModel())
    r1 = bot.chat("My dog died this morning.", session_id="s")
    r2 = bot.chat("I can't stop crying.", session_id="s")
    assert r1.emotion.available and r2.emotion.turn == 2 and r2.emotion.top
    assert r2.emotion.valence in {"positive", "negative", "ambiguous", "neutral"}
    assert r2.emotion.top[0].label in bot.reply_model.prompts[-1][0]["content"]
    assert bot.info()["emotion_tracking"] == "on"


def test_missing_classifier_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not found"):
        EmotionClassifier(str(tmp_path / "nope"))
