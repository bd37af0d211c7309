import pytest

from bot.emotion import EKMAN_GROUPS, GOEMOTIONS_LABELS, SENTIMENT_GROUPS, EmotionState, EmotionTracker


def test_groupings_cover_every_goemotions_label_once():
    for groups in (SENTIMENT_GROUPS, EKMAN_GROUPS):
        members = [label for labels in groups.values() for label in labels]
        assert sorted(members) == sorted(GOEMOTIONS_LABELS)


def test_unavailable_state_says_so_and_invents_nothing():
    s = EmotionState.unavailable()
    assert not s.available and "unavailable" in s.summary()
    assert s.top == () and s.valence is None and s.intensity is None and s.probabilities == {}


def test_first_update_takes_the_reading_as_is():
    t = EmotionTracker()
    s = t.update({"sadness": 0.8, "grief": 0.5, "joy": 0.01, "neutral": 0.1})
    assert [x.label for x in s.top] == ["sadness", "grief"]
    assert s.valence == "negative"
    assert s.intensity == pytest.approx(0.9)
    assert all(x.trend == "steady" for x in s.top)


def test_running_average_and_trends():
    t = EmotionTracker(alpha=0.6)
    t.update({"annoyance": 0.2, "anger": 0.1, "neutral": 0.6})
    s = t.update({"annoyance": 0.7, "anger": 0.6, "neutral": 0.1})
    # r2 = 0.6 * p2 + 0.4 * r1
    assert s.probabilities["annoyance"] == pytest.approx(0.6 * 0.7 + 0.4 * 0.2)
    assert s.probabilities["anger"] == pytest.approx(0.6 * 0.6 + 0.4 * 0.1)
    trends = {x.label: x.trend for x in s.top}
    assert trends == {"annoyance": "rising", "anger": "rising"}
    s = t.update({"annoyance": 0.0, "anger": 0.0, "neutral": 0.9})
    assert {x.label: x.trend for x in s.top}.get("annoyance") == "falling"


def test_valence_follows_a_clear_lead_of_glad_or_sad_emotions_over_surprise_and_neutral():
    # "I got the job!!! I can't believe it": surprise dominates, but what emotion there is, is glad
    assert EmotionTracker().update({"surprise": 0.92, "excitement": 0.2, "joy": 0.1, "neutral": 0.04}).valence == "positive"
    # "I got laid off today.": mostly neutral, what there is, is sad
    assert EmotionTracker().update({"neutral": 0.57, "sadness": 0.14, "disappointment": 0.18}).valence == "negative"
    # too little, or no clear lead: the heaviest group
    assert EmotionTracker().update({"neutral": 0.8, "sadness": 0.15}).valence == "neutral"
    assert EmotionTracker().update({"surprise": 0.7, "joy": 0.3, "sadness": 0.2}).valence == "ambiguous"


@pytest.mark.slow
def test_plain_good_and_bad_news_read_with_the_valence_a_person_would_give():
    from bot.emotion import EmotionClassifier

    clf = EmotionClassifier("goemotions-minilm")
    cases = {"I got the job!!! I can't believe it": "positive", "My sister had a healthy baby girl this morning!": "positive",
             "We won the championship!": "positive", "I passed my driving test!": "positive",
             "My dog died this morning.": "negative", "I failed my exam and I feel awful.": "negative",
             "I got laid off today.": "negative", "My wife left me.": "negative", "My car got stolen last night.": "negative"}
    for (text, expected), probs in zip(cases.items(), clf.predict(list(cases))):
        assert EmotionTracker().update(probs).valence == expected, text


def test_neutral_is_reported_only_when_nothing_else_qualifies():
    s = EmotionTracker().update({"neutral": 0.95, "joy": 0.03})
    assert [x.label for x in s.top] == ["neutral"]
    assert s.valence == "neutral"


def test_new_label_is_marked_new():
    t = EmotionTracker()
    t.update({"joy": 0.8})
    s = t.update({"joy": 0.8, "fear": 0.9})
    assert {x.label: x.trend for x in s.top}["fear"] == "new"


def test_the_line_under_a_reply_names_this_message_before_the_running_state():
    from bot.emotion import EmotionTracker

    t = EmotionTracker()
    t.update({"anger": 0.7, "annoyance": 0.2, "neutral": 0.1})  # about a landlord
    state = t.update({"surprise": 0.6, "joy": 0.3, "excitement": 0.2, "neutral": 0.05})  # "I got the job!!!"
    assert state.message_top() == [("surprise", 0.6), ("joy", 0.3)]
    line = state.line()
    assert line.startswith("this message: surprise 60%, joy 30% | conversation: ") and "anger" in line
    calm = EmotionTracker().update({"neutral": 0.9, "joy": 0.05})
    assert calm.message_top() == [("neutral", 0.9)]
