"""The real embedded default models on CPU: a three-turn conversation, end to end."""

import pytest

from bot import InvalidInputError, Reply

pytestmark = pytest.mark.slow


def test_three_turn_conversation_on_the_default_models(real_bot):
    sid = "integration"
    turns = ["I failed my driving test for the third time today and I feel like such an idiot.",
             "Everyone else I know passed on their first try.",
             "I don't know if I should even try again."]
    for i, text in enumerate(turns, 1):
        items = list(real_bot.stream(text, session_id=sid))
        reply = items[-1]
        assert isinstance(reply, Reply)
        assert len(items) > 2, "the reply should arrive in several streamed chunks"
        assert reply.text.strip(), "replies are never empty"
        assert reply.turn == i
        assert reply.emotion.turn == i and reply.emotion.available and reply.emotion.top
        assert reply.guidance != "unavailable" and reply.timings["emotion_ms"] > 0
        if reply.chosen is None:  # a possible crisis gets a written check-in
            assert reply.reason.startswith("written")
        elif any(c["source"] == "model" for c in reply.candidates):
            assert reply.timings["first_token_ms"] > 0 and reply.timings["prompt_tokens"] > 0
        else:  # the written openers (whole replies) and the pool's human replies: no model call
            assert {c["source"] for c in reply.candidates} <= {"opener", "retrieved"}
            assert reply.timings["prompt_tokens"] == 0
    assert real_bot.trajectory(sid)[0].valence == "negative"  # failing a test and feeling like an idiot
    # the model reads the history: with the openers off it writes, and its prompt holds the earlier turns
    old, real_bot.config.generation.openers = real_bot.config.generation.openers, 0.0
    try:
        later = real_bot.chat("Maybe I'll book another lesson next week.", session_id=sid)
        alone = real_bot.chat("Maybe I'll book another lesson next week.", session_id=sid + "-alone")
    finally:
        real_bot.config.generation.openers = old
    assert later.timings["prompt_tokens"] > alone.timings["prompt_tokens"] > 0
    history = real_bot.history(sid)
    assert [m["role"] for m in history] == ["user", "assistant"] * 4
    assert [s.turn for s in real_bot.trajectory(sid)] == [1, 2, 3, 4]


def test_history_stays_bounded_by_the_context_budget(real_bot):
    sid = "bounded"
    budget = 300
    old = real_bot.config.conversation.context_tokens
    real_bot.config.conversation.context_tokens = budget
    try:
        for i in range(6):
            reply = real_bot.chat(f"Turn {i}: today was long and I keep thinking about everything that went wrong.",
                                  session_id=sid)
            assert reply.timings["prompt_tokens"] <= budget
        assert reply.history_turns_used < 5
    finally:
        real_bot.config.conversation.context_tokens = old


def test_seeded_replies_are_reproducible(real_bot):
    a = real_bot.chat("I got the job I wanted!", session_id="seed-a").text
    b = real_bot.chat("I got the job I wanted!", session_id="seed-b").text
    assert a == b


@pytest.mark.parametrize("text", ["I feel 😢 today, everything is 💔", "Je me sens très seul ce soir.",
                                  "bad \x1b[2J\x00 bytes", b"caf\xe9 \xff"])
def test_unusual_input_gets_a_normal_reply(real_bot, text):
    reply = real_bot.chat(text, session_id="odd")
    assert reply.text.strip()


def test_bad_input_is_refused_without_touching_history(real_bot):
    sid = "bad"
    real_bot.chat("Hello there.", session_id=sid)
    before = real_bot.history(sid)
    for bad in ["", "   \n", "x" * 100_000]:
        with pytest.raises(InvalidInputError):
            real_bot.chat(bad, session_id=sid)
    assert real_bot.history(sid) == before


def test_emotion_state_follows_the_conversation(real_bot):
    sid = "mood"
    first = real_bot.chat("I just got the job I wanted, I'm so happy!", session_id=sid).emotion
    assert first.valence == "positive" and first.primary in {"joy", "excitement", "admiration", "gratitude", "pride",
                                                               "optimism", "love", "relief", "approval"}
    later = None
    for text in ["But now my boss is yelling at me and I'm furious.", "He keeps blaming me for his mistakes, I'm so angry!"]:
        later = real_bot.chat(text, session_id=sid).emotion
    assert later.valence == "negative"
    assert {"anger", "annoyance"} & {s.label for s in later.top}
    assert any(s.trend in ("rising", "new") for s in later.top if s.label in ("anger", "annoyance"))


def test_why_this_reading(real_bot):
    why = real_bot.explain("My dog died yesterday and I miss him so much")
    assert why and all(len(words) <= 5 for words in why.values())
    top_label, words = next(iter(why.items()))
    assert {w.strip(".,").lower() for w, _ in words[:3]} & {"died", "miss", "dog"}, why


def test_info_describes_the_loaded_model(real_bot):
    info = real_bot.info()["reply_model"]
    assert info["device"] == "cpu"
    if info["backend"] == "llama-cpp":  # the context it allocates: the prompt budget plus the reply
        assert "q8_0" in info["dtype"] and info["context_window"] >= 2048 + 24 and info["threads"] >= 1
    else:
        assert info["dtype"] == "float32" and info["context_window"] == 8192
    assert info["parameters"] > 100_000_000
