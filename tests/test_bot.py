import logging
import threading

import pytest

from bot import BotConfig, EmpatheticBot, InvalidInputError, Reply
from bot.errors import GenerationError
from fakes import FakeReplyModel, KeywordClassifier


def make_bot(replies=None, classifier=None, **conv):
    config = BotConfig()
    config.model.emotion_classifier = None  # stand-ins only: the keyword classifier when a test passes one
    for k, v in conv.items():
        setattr(config.conversation, k, v)
    return EmpatheticBot(config, reply_model=FakeReplyModel(replies), emotion_classifier=classifier)


def test_chat_returns_a_reply_and_records_the_turn():
    bot = make_bot(["That sounds hard."])
    r = bot.chat("I lost my job", session_id="a")
    assert isinstance(r, Reply) and r.text == "That sounds hard."
    assert r.session_id == "a" and r.turn == 1
    assert bot.history("a") == [{"role": "user", "content": "I lost my job"},
                                {"role": "assistant", "content": "That sounds hard."}]
    assert set(r.timings) >= {"total_ms", "first_token_ms", "tokens_per_s", "prompt_tokens", "new_tokens"}
    assert not r.emotion.available and "unavailable" in r.emotion.reason


def test_stream_yields_text_then_the_reply():
    bot = make_bot(["one two three"])
    items = list(bot.stream("I had a long day", session_id="s"))
    assert isinstance(items[-1], Reply)
    assert "".join(items[:-1]).strip() == items[-1].text == "one two three"


def test_sessions_never_see_each_other():
    bot = make_bot()
    bot.chat("secret of alice", session_id="alice")
    bot.chat("hello from bob", session_id="bob")
    bob_prompt = bot.reply_model.prompts[-1]
    assert all("alice" not in m["content"] for m in bob_prompt)
    assert [m["content"] for m in bot.history("bob")][0] == "hello from bob"
    assert len(bot.history("alice")) == 2


def test_two_bots_share_nothing():
    a, b = make_bot(), make_bot()
    a.chat("only in a", session_id="x")
    assert b.history("x") == [] and a.config is not b.config


def test_reset_forgets_history_and_state():
    bot = make_bot(classifier=KeywordClassifier())
    bot.chat("I am so sad", session_id="s")
    bot.reset("s")
    assert bot.history("s") == [] and bot.trajectory("s") == []
    assert bot.chat("hello", session_id="s").turn == 1


def test_failed_turn_leaves_history_and_state_unchanged():
    bot = make_bot(classifier=KeywordClassifier())
    bot.reply_model.fail_on = "BOOM"
    bot.chat("I am so sad", session_id="s")
    before = (bot.history("s"), bot.trajectory("s"))
    with pytest.raises(GenerationError, match="simulated model failure"):
        bot.chat("BOOM angry", session_id="s")
    with pytest.raises(InvalidInputError):
        bot.chat("   ", session_id="s")
    with pytest.raises(InvalidInputError):
        bot.chat("x" * 100_000, session_id="s")
    assert (bot.history("s"), bot.trajectory("s")) == before
    # the tracker was not advanced by the failed turns either
    assert bot.chat("angry now", session_id="s").emotion.turn == 2


def test_abandoned_stream_commits_nothing():
    bot = make_bot(["a b c d e f"])
    it = bot.stream("I had a long day", session_id="s")
    next(it)
    it.close()
    assert bot.history("s") == []


def test_cancel_keeps_the_partial_reply():
    bot = make_bot(["a b c d e f"])
    cancel = threading.Event()
    cancel.set()
    reply = [x for x in bot.stream("I had a long day", session_id="s", cancel=cancel)][-1]
    assert reply.stopped == "cancelled"
    assert len(bot.history("s")) == 2


def test_emotion_state_is_tracked_per_session_and_drives_guidance():
    bot = make_bot(classifier=KeywordClassifier())
    r1 = bot.chat("I feel sad and lost", session_id="s")
    assert r1.emotion.available and r1.emotion.primary == "sadness"
    assert r1.guidance == "sadness"
    assert bot.prompts.guidance["sadness"] in bot.reply_model.prompts[-1][0]["content"]
    r2 = bot.chat("now I am furious and angry", session_id="s")
    assert r2.emotion.turn == 2
    assert {s.label: s.trend for s in r2.emotion.top}["anger"] == "rising"
    assert [s.turn for s in bot.trajectory("s")] == [1, 2]
    assert bot.emotion_state("other").top == ()


def test_history_is_trimmed_oldest_turns_first_whole_messages_only():
    bot = make_bot(context_tokens=250)
    for i in range(30):
        bot.chat(f"message number {i} " + "word " * 10, session_id="s")
    prompt = bot.reply_model.prompts[-1]
    assert bot.reply_model.count_tokens(prompt) <= 250
    assert prompt[0]["role"] == "system" and prompt[-1]["content"].startswith("message number 29")
    roles = [m["role"] for m in prompt[1:]]
    assert roles == ["user", "assistant"] * ((len(roles) - 1) // 2) + ["user"]  # whole turns, in order
    kept = [m["content"] for m in prompt[1:-1] if m["role"] == "user"]
    assert kept and kept[-1].startswith("message number 28")  # the most recent turns are the ones kept
    assert len(kept) < 29
    # every stored message is intact; only the prompt is trimmed
    assert len(bot.history("s")) == 60


def test_trimming_keeps_the_largest_fitting_history():
    bot = make_bot(context_tokens=260)
    for i in range(12):
        bot.chat(f"m{i} " + "w " * 8, session_id="s")
    prompt = bot.reply_model.prompts[-1]
    n = bot.reply_model.count_tokens(prompt)
    # adding back the next-older turn would not have fit
    assert n <= 260
    used = (len(prompt) - 2) // 2
    older = bot.history("s")[-2 - 2 * (used + 1): -2 - 2 * used]
    assert n + bot.reply_model.count_tokens(older) > 260


def test_message_too_long_for_the_context_is_refused():
    bot = make_bot(context_tokens=64)
    with pytest.raises(InvalidInputError, match="too long for the model's context"):
        bot.chat("word " * 200, session_id="s")


def test_respond_is_stateless():
    bot = make_bot(["ok"], classifier=KeywordClassifier())
    reply = list(bot.respond([{"role": "user", "content": "I am sad"}, {"role": "assistant", "content": "oh"},
                              {"role": "user", "content": "and scared"}]))[-1]
    assert reply.emotion.turn == 2 and bot.sessions() == []
    with pytest.raises(InvalidInputError):
        list(bot.respond([{"role": "assistant", "content": "hi"}]))


def test_conversation_text_is_not_logged_unless_enabled(caplog):
    caplog.set_level(logging.DEBUG)
    make_bot().chat("my private words", session_id="s")
    assert "private" not in caplog.text
    make_bot(log_conversations=True).chat("my private words", session_id="s")
    assert "private" in caplog.text


def test_concurrent_sessions():
    bot = make_bot()
    errors = []

    def talk(name):
        try:
            for i in range(5):
                bot.chat(f"{name} {i}", session_id=name)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=talk, args=(f"user{i}",)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    for i in range(4):
        assert [m["content"] for m in bot.history(f"user{i}") if m["role"] == "user"] == [f"user{i} {j}" for j in range(5)]


def test_stored_history_is_capped_but_the_turn_count_goes_on():
    config = BotConfig()
    config.conversation.max_stored_turns = 2
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(), emotion_classifier=KeywordClassifier())
    for i in range(4):
        reply = bot.chat(f"message {i}, I'm sad", session_id="s")
    history = bot.history("s")
    assert [m["content"] for m in history if m["role"] == "user"] == ["message 2, I'm sad", "message 3, I'm sad"]
    assert len(bot.trajectory("s")) == 2 and reply.emotion.turn == 4 and reply.turn == 4
