"""Conversations that survive restarts: the stores, restore exactly as it was, a real kill -9 mid-turn,
export / import / delete / expiry, the live-session cap, and redaction of what is kept."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bot import BotConfig, EmpatheticBot
from bot.errors import GenerationError, InvalidInputError
from bot.privacy import redact
from bot.store import MemoryStore, SQLiteStore, open_store
from fakes import FakeReplyModel, KeywordClassifier

ROOT = Path(__file__).resolve().parent.parent


def make_bot(store=None, replies=None, **conv):
    config = BotConfig()
    config.model.emotion_classifier = None
    config.model.crisis_detector = None
    for k, v in conv.items():
        setattr(config.conversation, k, v)
    return EmpatheticBot(config, reply_model=FakeReplyModel(replies), emotion_classifier=KeywordClassifier(),
                         store=store)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_store_round_trip(tmp_path, kind):
    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db")
    assert store.load("a") is None and store.ids() == []
    store.save("a", {"x": [1, "é"]})
    store.save("a", {"x": [2]})
    assert store.load("a") == {"x": [2]} and store.ids() == ["a"]
    assert store.expire(3600) == [] and store.delete("a") and not store.delete("a")
    store.save("old", {})
    time.sleep(0.05)
    assert store.expire(0.01) == ["old"] and store.ids() == []


def test_open_store_specs(tmp_path):
    assert isinstance(open_store(None), MemoryStore) and isinstance(open_store("memory"), MemoryStore)
    assert open_store(f"sqlite:///{tmp_path}/a.db").describe() == f"sqlite:///{tmp_path}/a.db"
    assert isinstance(open_store(str(tmp_path / "b.db")), SQLiteStore)
    with pytest.raises(ValueError, match="unsupported"):
        open_store("postgresql://host/db")


def test_a_newer_schema_is_refused(tmp_path):
    import sqlite3

    SQLiteStore(tmp_path / "s.db")
    with sqlite3.connect(tmp_path / "s.db") as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer version"):
        SQLiteStore(tmp_path / "s.db")


def test_a_restarted_bot_continues_exactly_as_it_was(tmp_path):
    path = tmp_path / "s.db"
    first = make_bot(SQLiteStore(path), ["I'm so sorry about your dog.", "That sounds hard."])
    first.chat("My dog died and I am so sad", session_id="u1")
    r = first.chat("I keep crying", session_id="u1")
    second = make_bot(SQLiteStore(path), ["Tell me more."])
    assert second.sessions() == ["u1"]
    assert second.history("u1") == first.history("u1")
    assert second.trajectory("u1") == first.trajectory("u1")
    assert second.emotion_state("u1") == r.emotion
    third = make_bot(SQLiteStore(path), ["Tell me more."])
    assert len(third.history("u1")) == 4  # loaded now, before the first bot goes on
    # the same prompt as a bot that never restarted would build
    first.reply_model.replies = ["Tell me more."]
    first.chat("He was fourteen", session_id="u1")
    third.chat("He was fourteen", session_id="u1")
    assert third.reply_model.prompts[-1] == first.reply_model.prompts[-1]
    assert third.emotion_state("u1") == first.emotion_state("u1")


def test_a_turn_that_cannot_be_stored_is_undone(tmp_path):
    class Failing(MemoryStore):
        fail = False

        def save(self, session_id, snapshot):
            if self.fail:
                raise OSError("disk full")
            super().save(session_id, snapshot)

    store = Failing()
    bot = make_bot(store, ["One.", "Two."])
    bot.chat("first", session_id="a")
    store.fail = True
    with pytest.raises(GenerationError, match="could not be saved"):
        bot.chat("second", session_id="a")
    assert len(bot.history("a")) == 2 and len(bot.trajectory("a")) == 1  # live and stored agree
    assert store.load("a")["messages"] == bot.history("a")


def test_export_import_and_delete(tmp_path):
    bot = make_bot(SQLiteStore(tmp_path / "s.db"), ["Oh no.", "I hear you."])
    bot.chat("I am scared of the exam", session_id="a")
    data = bot.export_session("a")
    assert data["session_id"] == "a" and len(data["messages"]) == 2 and data["states"]
    json.dumps(data)  # JSON-able
    other = make_bot(SQLiteStore(tmp_path / "t.db"))
    assert other.import_session(json.loads(json.dumps(data)), "b") == "b"
    assert other.history("b") == bot.history("a") and other.trajectory("b") == bot.trajectory("a")
    bot.delete_session("a")
    assert bot.history("a") == [] and bot.sessions() == [] and bot.store.load("a") is None
    with pytest.raises(InvalidInputError):
        bot.export_session("a")
    for broken in ({}, {"version": 1}, {"version": 1, "messages": [{"role": "system", "content": "x"}] * 2,
                                        "tracker": {}, "states": []}, "text", {"version": 2}):
        with pytest.raises(InvalidInputError):
            other.import_session(broken, "c")
    assert "c" not in other.sessions()


def test_idle_sessions_expire_from_memory_and_store(tmp_path):
    bot = make_bot(SQLiteStore(tmp_path / "s.db"), ["a", "b"], session_idle_expiry_s=0.2)
    bot.chat("hello there friend", session_id="old")
    time.sleep(0.3)
    bot.chat("hi again friend", session_id="new")
    assert bot.expire_sessions() == ["old"] and bot.sessions() == ["new"]


def test_live_sessions_are_capped(tmp_path):
    stored = make_bot(SQLiteStore(tmp_path / "s.db"), [f"r{i}" for i in range(5)], max_live_sessions=2)
    for i in range(5):
        stored.chat(f"message number {i}", session_id=f"s{i}")
    assert stored.live_sessions() == 2 and len(stored.sessions()) == 5  # unloaded, not lost
    assert stored.history("s0")[0]["content"] == "message number 0"
    memory = make_bot(None, [f"r{i}" for i in range(5)], max_live_sessions=2)
    for i in range(5):
        memory.chat(f"message number {i}", session_id=f"s{i}")
    assert memory.sessions() == ["s3", "s4"]


def test_refused_input_creates_no_stored_session(tmp_path):
    bot = make_bot(SQLiteStore(tmp_path / "s.db"))
    for bad in ("", "   ", None, b"\x00" * 10):
        with pytest.raises(InvalidInputError):
            bot.chat(bad, session_id="x")
    with pytest.raises(InvalidInputError):
        bot.chat("hi", session_id="x" * 500)
    assert bot.sessions() == []


def test_redaction():
    text, counts = redact("Write to jo.doe+x@example.co.uk or +44 7700 900123; card 4111 1111 1111 1111; "
                          "IBAN DE89 3704 0044 0532 0130 00")
    assert text == "Write to [email] or [phone_number]; card [card_number]; IBAN [account_number]"
    assert counts == {"email": 1, "phone_number": 1, "card_number": 1, "account_number": 1}
    for keep in ("I was born 1990-05-12 and paid 1,250 dollars", "order 123456 on 12/05/2024",
                 "card 4111 1111 1111 1112", "I have 3 kids and 2 dogs"):  # the card fails the Luhn check
        assert redact(keep) == (keep, {})


def test_what_is_kept_is_redacted_but_the_reply_read_the_message(tmp_path):
    bot = make_bot(SQLiteStore(tmp_path / "s.db"), ["I will write to you."])
    r = bot.chat("My email is sam@example.org and I feel lost", session_id="a")
    assert "redacted:email" in r.safety
    assert "sam@example.org" in bot.reply_model.prompts[-1][-1]["content"]  # the model saw it this turn
    assert bot.history("a")[0]["content"] == "My email is [email] and I feel lost"
    assert "sam@example.org" not in (tmp_path / "s.db").read_bytes().decode("utf-8", "replace")
    plain = make_bot(None, ["ok"], redact=False)
    assert plain.chat("sam@example.org", session_id="a").safety == () and "sam@" in plain.history("a")[0]["content"]


KILLED_CHILD = textwrap.dedent("""
    import sys, time
    sys.path[:0] = [{root!r}, {tests!r}]
    from bot import BotConfig, EmpatheticBot
    from bot.store import SQLiteStore
    from fakes import FakeReplyModel

    config = BotConfig()
    config.model.emotion_classifier = config.model.crisis_detector = None
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(["First reply.", "Second reply."], delay=0.5),
                        store=SQLiteStore({db!r}))
    for i, text in enumerate(["first message here", "second message here"]):
        for piece in bot.stream(text, session_id="k"):
            pass
        print("done", i, flush=True)
""")


def test_kill_9_mid_turn_loses_only_that_turn(tmp_path):
    db = tmp_path / "s.db"
    code = KILLED_CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), db=str(db))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "done 0"
    time.sleep(0.4)  # inside the second turn's generation (the stand-in takes 0.5 s a word)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    store = SQLiteStore(db)
    snap = store.load("k")
    assert [m["content"] for m in snap["messages"]] == ["first message here", "First reply."]
    bot = make_bot(store, ["Again."])
    bot.chat("second message here", session_id="k")
    assert len(bot.history("k")) == 4
