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
    config.model.ranker = None  # stand-in models only: no ranker, no reply pool
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
    assert isinstance(open_store(str(tmp_path / "b.db")), SQLiteStore)  # other URLs: test_store_sql.py


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
    # a copy of the file as it is now: the third bot restores from it while the first goes on
    import sqlite3

    with sqlite3.connect(path) as src, sqlite3.connect(tmp_path / "copy.db") as dst:
        src.backup(dst)
    third = make_bot(SQLiteStore(tmp_path / "copy.db"), ["Tell me more."])
    assert len(third.history("u1")) == 4
    # the same prompt as a bot that never restarted would build
    first.reply_model.replies = ["Tell me more."]
    first.chat("He was fourteen", session_id="u1")
    third.chat("He was fourteen", session_id="u1")
    assert third.reply_model.prompts[-1] == first.reply_model.prompts[-1]
    assert third.emotion_state("u1") == first.emotion_state("u1")


def test_a_turn_that_cannot_be_stored_is_undone(tmp_path):
    class Failing(MemoryStore):
        fail = False

        def save(self, session_id, snapshot, expected=None):
            if self.fail:
                raise OSError("disk full")
            return super().save(session_id, snapshot, expected)

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
    config.model.emotion_classifier = config.model.crisis_detector = config.model.ranker = None
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


# -- revisions: several processes on one store ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_revisions_and_conditional_saves(tmp_path, kind):
    from bot.errors import ConversationConflictError

    store = MemoryStore() if kind == "memory" else SQLiteStore(tmp_path / "s.db")
    assert store.revision("a") == 0 and store.read("a") is None
    r1 = store.save("a", {"n": 1}, expected=0)
    assert store.revision("a") == r1 and store.read("a") == ({"n": 1}, r1)
    with pytest.raises(ConversationConflictError, match="changed elsewhere"):
        store.save("a", {"n": "lost"}, expected=0)  # someone else created it first
    r2 = store.save("a", {"n": 2}, expected=r1)
    assert r2 > r1
    with pytest.raises(ConversationConflictError):
        store.save("a", {"n": "stale"}, expected=r1)
    assert store.read("a") == ({"n": 2}, r2)  # the refused save wrote nothing
    store.delete("a")
    r3 = store.save("a", {"n": 3}, expected=0)  # begun again: never an old revision
    assert r3 > r2 and store.save("b", {}) > r3  # no expected: unconditional


def test_a_schema_1_file_is_upgraded_in_place(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # what version 1 wrote
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        db.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, updated REAL NOT NULL, snapshot TEXT NOT NULL)")
        db.execute("INSERT INTO sessions VALUES ('old', ?, ?)", (time.time(), json.dumps({"x": 1})))
    store = SQLiteStore(path)
    assert store.read("old") == ({"x": 1}, 1)
    assert store.save("old", {"x": 2}, expected=1) > 1
    assert SQLiteStore(path).load("old") == {"x": 2}  # opened again: nothing to upgrade
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


SHARED_TURNS = ["My dog died and I am so sad", "I keep crying at night", "Now I am angry at the vet",
                "I am scared it was my fault", "Thanks, I feel a bit better", "I am happy we talked"]


def assert_alternate_turns_match_one_bot(a, b, alone) -> None:
    """``a`` and ``b`` (sharing a store) answer alternate turns of one conversation; after every turn
    both hold exactly what ``alone`` (answering every turn) holds."""
    for i, text in enumerate(SHARED_TURNS):
        bot = (a, b)[i % 2]
        bot.reply_model.replies, alone.reply_model.replies = [f"Reply number {i}."], [f"Reply number {i}."]
        r = bot.chat(text, session_id="shared")
        expected = alone.chat(text, session_id="shared")
        assert r.text == expected.text and r.turn == expected.turn == i + 1
        assert bot.reply_model.prompts[-1] == alone.reply_model.prompts[-1]  # the same history went in
        for either in (a, b):
            assert either.history("shared") == alone.history("shared")
            assert either.trajectory("shared") == alone.trajectory("shared")
            assert either.emotion_state("shared") == alone.emotion_state("shared") == r.emotion
            assert either.export_session("shared")["tracker"] == alone.export_session("shared")["tracker"]
    assert [m["content"] for m in a.history("shared")[0::2]] == SHARED_TURNS
    assert a.emotion_state("shared").top[0].label == "joy"


def test_two_bots_on_one_file_continue_each_others_turns(tmp_path):
    """Two bots (as two ``serve`` processes would) on one SQLite file answer alternate turns of one
    conversation: each continues from the other's newest save, exactly as one bot alone would."""
    path = tmp_path / "shared.db"
    assert_alternate_turns_match_one_bot(make_bot(SQLiteStore(path)), make_bot(SQLiteStore(path)), make_bot(None))


def assert_a_delete_is_seen_by_the_other(a, b) -> None:
    """A conversation ``a`` (sharing ``b``'s store) answered and then deleted is gone for ``b`` too."""
    a.chat("I lost my job today", session_id="s")
    assert len(b.history("s")) == 2
    a.delete_session("s")
    assert b.history("s") == [] and "s" not in b.sessions()
    with pytest.raises(InvalidInputError):
        b.export_session("s")


def test_a_conversation_deleted_in_one_process_is_gone_in_the_other(tmp_path):
    path = tmp_path / "shared.db"
    a = make_bot(SQLiteStore(path), ["One.", "Two."])
    b = make_bot(SQLiteStore(path), ["Fresh start."])
    assert_a_delete_is_seen_by_the_other(a, b)
    a.chat("I lost my job today", session_id="s2")
    b_live = b._session("s2")  # b holds a copy, then a deletes and begins the conversation again
    a.delete_session("s2")
    r = b.chat("hello again, new day", session_id="s2")
    assert r.turn == 1 and len(b.history("s2")) == 2 and b_live.revision == b.store.revision("s2")


def test_a_turn_that_races_another_process_is_not_kept(tmp_path):
    path = tmp_path / "shared.db"
    assert_a_racing_turn_is_not_kept(SQLiteStore(path), SQLiteStore(path))


def assert_a_racing_turn_is_not_kept(store_a, store_b) -> None:
    """A turn of ``b`` that began before ``a`` saved the same session again is refused, not kept."""
    from bot.errors import ConversationConflictError

    a = make_bot(store_a, ["A one.", "A two."])
    b = make_bot(store_b, ["B racing.", "B after."])
    a.chat("first message here", session_id="s")
    turn = b.stream("second message from b", session_id="s")
    next(turn)  # b's turn has begun from a's first save (its reply is ready)...
    a.chat("second message from a", session_id="s")  # ...when a saves the session again
    with pytest.raises(ConversationConflictError, match="changed elsewhere"):
        list(turn)
    assert b.history("s") == a.history("s") and len(a.history("s")) == 4  # b's turn was not kept
    r = b.chat("third message from b", session_id="s")
    assert r.turn == 3 and b.history("s")[:4] == a.history("s")[:4] and len(a.history("s")) == 6


TWO_PROCESS_CHILD = textwrap.dedent("""
    import json, sys
    sys.path[:0] = [{root!r}, {tests!r}]
    from bot import BotConfig, EmpatheticBot
    from bot.store import SQLiteStore
    from fakes import FakeReplyModel, KeywordClassifier

    name = sys.argv[1]
    config = BotConfig()
    config.model.emotion_classifier = config.model.crisis_detector = config.model.ranker = None
    bot = EmpatheticBot(config, reply_model=FakeReplyModel(), emotion_classifier=KeywordClassifier(),
                        store=SQLiteStore({db!r}))
    print("ready", flush=True)
    for line in sys.stdin:
        bot.reply_model.replies = [f"{{name}} answers turn {{line.strip()[-1]}}."]
        r = bot.chat(line.strip(), session_id="shared")
        print(json.dumps({{"turn": r.turn, "messages": len(bot.history("shared")),
                          "emotion": r.emotion.top[0].label if r.emotion.top else None}}), flush=True)
""")


def test_two_os_processes_alternate_turns_on_one_file(tmp_path):
    db = tmp_path / "shared.db"
    code = TWO_PROCESS_CHILD.format(root=str(ROOT), tests=str(ROOT / "tests"), db=str(db))
    procs = [subprocess.Popen([sys.executable, "-c", code, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for name in ("A", "B")]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        texts = [f"{t} {i}" for i, t in enumerate(SHARED_TURNS)]
        for i, text in enumerate(texts):
            p = procs[i % 2]
            p.stdin.write(text + "\n")
            p.stdin.flush()
            out = json.loads(p.stdout.readline())
            assert out["turn"] == i + 1 and out["messages"] == 2 * (i + 1)
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=30)
    snap = SQLiteStore(db).load("shared")
    assert [m["content"] for m in snap["messages"]] == [
        x for i, t in enumerate(texts) for x in (t, f"{'AB'[i % 2]} answers turn {i}.")]
    assert snap["tracker"]["turn"] == len(texts) and len(snap["states"]) == len(texts)
    alone = make_bot(None)
    for i, t in enumerate(texts):
        alone.reply_model.replies = [f"{'AB'[i % 2]} answers turn {i}."]
        alone.chat(t, session_id="shared")
    assert snap["states"] == json.loads(json.dumps([s.to_dict() for s in alone.trajectory("shared")]))


# -- the turn time limit -------------------------------------------------------------------------------


def test_a_turn_past_its_time_limit_is_stopped_and_not_kept(tmp_path):
    from bot.errors import TurnTimeoutError

    words = " ".join(f"word{i}" for i in range(80))
    bot = make_bot(SQLiteStore(tmp_path / "s.db"), ["That sounds hard.", words, "I am here."])
    bot.chat("My dog died and I am so sad", session_id="a")
    before = (bot.export_session("a"), bot.store.read("a"))
    bot.config.conversation.turn_timeout_s = 0.3
    bot.reply_model.delay = 0.05  # 80 words: 4 s, unless the limit stops it
    t0 = time.perf_counter()
    turn = bot.stream("I keep crying", session_id="a")
    with pytest.raises(TurnTimeoutError, match="time limit"):
        for item in turn:
            assert not isinstance(item, str), "no text of a stopped turn is shown"
    assert time.perf_counter() - t0 < 2.5  # cancelled, not waited out
    after = bot.export_session("a")
    assert {**after, "exported": None} == {**before[0], "exported": None} and bot.store.read("a") == before[1]
    bot.reply_model.delay, bot.config.conversation.turn_timeout_s = 0.0, 30.0
    r = bot.chat("I keep crying", session_id="a")
    assert r.turn == 2 and r.text == "I am here." and len(bot.history("a")) == 4
    assert BotConfig().conversation.turn_timeout_s is None  # no limit unless one is set
    with pytest.raises(ValueError, match="turn_timeout_s"):
        BotConfig.from_dict({"conversation": {"turn_timeout_s": 0}})


def test_processes_opening_one_new_file_at_once_all_start(tmp_path):
    """Several `serve` processes started together on a new file: switching it to WAL races, and SQLite
    does not wait on that lock by itself (before the retry, about one round in 40 failed)."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bot.store import SQLiteStore; SQLiteStore(sys.argv[1])"
    for round_ in range(60):
        db = tmp_path / f"new-{round_}.db"
        procs = [subprocess.Popen([sys.executable, "-c", code, str(db)], stderr=subprocess.PIPE, text=True)
                 for _ in range(3)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
