"""The SQLAlchemy store (``bot.store_sql``): the store's contract on SQLite through SQLAlchemy (always)
and on a real PostgreSQL server (a throwaway cluster of Debian's ``postgresql`` package, when it is
installed; skipped otherwise): revisions and conditional saves, saves racing each other and deletes,
two bots sharing conversations, expiry, schema upgrades, URLs and the errors for what is missing."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

sa = pytest.importorskip("sqlalchemy", reason="SQLAlchemy is not installed: pip install -e '.[test]'")

from bot.errors import ConversationConflictError, SessionStoreError  # noqa: E402
from bot.store import SQLiteStore, open_store  # noqa: E402
from bot.store_sql import SQLAlchemyStore, engine_url  # noqa: E402
from test_store import (assert_a_delete_is_seen_by_the_other, assert_a_racing_turn_is_not_kept,  # noqa: E402
                        assert_alternate_turns_match_one_bot, make_bot)

# -- a throwaway PostgreSQL server ---------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    """The newest of Debian's PostgreSQL server binaries (/usr/lib/postgresql/VERSION/bin), if any."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")
             if os.access(Path(p).parent / "pg_ctl", os.X_OK)]
    return max(found, key=lambda b: int(b.parent.name) if b.parent.name.isdigit() else 0) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster in a temporary folder on a free local port, for this test run only: its
    admin URL (user postgres, no password, TCP on 127.0.0.1 only). PostgreSQL refuses to run as root, so
    as root the server runs as ``nobody``. Durability is off (fsync): nothing here needs to survive."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server (Debian: apt-get install postgresql; scripts/test.sh installs it as root)")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install -e '.[postgres]'")
    run_as: dict = {}
    if os.geteuid() == 0:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root, and there is no user 'nobody' to run PostgreSQL as")
        run_as = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    base = Path(tempfile.mkdtemp(prefix="bot-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    if run_as:
        os.chown(base, run_as["user"], run_as["group"])
    data, port = base / "data", _free_port()

    def run(*args):
        return subprocess.run([str(a) for a in args], cwd=base, capture_output=True, text=True, timeout=120, **run_as)

    try:
        done = run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale",
                   "--no-sync")
        if done.returncode == 0:
            done = run(bindir / "pg_ctl", "-D", data, "-l", base / "server.log", "-w", "-t", "60", "-o",
                       f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200", "start")
        if done.returncode != 0:
            log = (base / "server.log").read_text(errors="replace") if (base / "server.log").exists() else ""
            pytest.skip(f"could not start PostgreSQL from {bindir}: {(done.stderr + done.stdout + log)[-500:]}")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        if data.exists():
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server):
    """A new, empty database on the test server."""
    import psycopg

    name = f"bot_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.replace("+psycopg", "") + "/postgres", autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
    return f"{postgres_server}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    """A store URL: a SQLite file through SQLAlchemy, and a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+pysqlite:///{tmp_path}/sessions.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def stores():
    """Opens SQLAlchemy stores (each its own engine and connections, as in separate processes) and closes
    them after the test."""
    opened = []

    def open_one(url):
        opened.append(SQLAlchemyStore(url))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


# -- the store -----------------------------------------------------------------------------------------


def test_round_trip(url, stores):
    store = stores(url)
    assert store.load("a") is None and store.ids() == []
    store.save("a", {"x": [1, "é", "\x00 \u2028"]})
    store.save("a", {"x": [2]})
    assert store.load("a") == {"x": [2]} and store.ids() == ["a"]
    assert store.expire(3600) == [] and store.delete("a") and not store.delete("a")
    store.save("old", {})
    time.sleep(1.2)  # margins of 0.6 s on both sides: a busy machine must not make "new" look idle
    store.save("new", {})
    assert store.ids() == ["old", "new"]  # least recently saved first
    assert store.expire(0.6) == ["old"] and store.ids() == ["new"]


def test_revisions_and_conditional_saves(url, stores):
    store = stores(url)
    assert store.revision("a") == 0 and store.read("a") is None
    r1 = store.save("a", {"n": 1}, expected=0)
    assert store.revision("a") == r1 and store.read("a") == ({"n": 1}, r1)
    with pytest.raises(ConversationConflictError, match="changed elsewhere"):
        store.save("a", {"n": "lost"}, expected=0)  # someone else created it first
    r2 = store.save("a", {"n": 2}, expected=r1)
    assert r2 > r1
    with pytest.raises(ConversationConflictError, match=f"it is at revision {r2}, the turn began from {r1}"):
        store.save("a", {"n": "stale"}, expected=r1)
    assert store.read("a") == ({"n": 2}, r2)  # the refused save wrote nothing
    store.delete("a")
    with pytest.raises(ConversationConflictError):
        store.save("a", {"n": "stale"}, expected=r2)  # a stale save never brings back a deleted session
    assert store.read("a") is None
    r3 = store.save("a", {"n": 3}, expected=0)  # begun again: never an old revision
    assert r3 > r2 and store.save("b", {}) > r3  # no expected: unconditional
    assert stores(url).read("a") == ({"n": 3}, r3)  # another connection pool sees the same


def test_concurrent_saves_lose_no_update(url, stores):
    """Four stores (as four processes) add one to the same counter 15 times each, read, then save
    naming the revision read, again on a conflict: no increment is lost, and each save that was kept got
    a revision of its own."""
    first = stores(url)
    first.save("c", {"n": 0, "revisions": []})
    conflicts = []

    def add(store):
        for _ in range(15):
            while True:
                snap, rev = store.read("c")
                try:
                    store.save("c", {"n": snap["n"] + 1, "revisions": snap["revisions"] + [rev]}, expected=rev)
                    break
                except ConversationConflictError:
                    conflicts.append(rev)

    workers = [threading.Thread(target=add, args=(stores(url),)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    snap, rev = first.read("c")
    assert snap["n"] == 60 and len(set(snap["revisions"])) == 60
    assert snap["revisions"] == sorted(snap["revisions"]) and rev > snap["revisions"][-1]


def _stale_save(store, expected: int):
    """(outcome list, a function that saves with ``expected`` and appends the revision or the conflict)."""
    outcome = []

    def save():
        try:
            outcome.append(store.save("s", {"n": "stale"}, expected=expected))
        except ConversationConflictError as exc:
            outcome.append(exc)

    return outcome, save


def test_a_save_waits_for_another_in_flight_and_sees_it(url, stores):
    """A save that begins while another process's save holds the counter waits for it, then sees what it
    committed: its stale ``expected`` is refused."""
    store, other = stores(url), stores(url)
    r1 = store.save("s", {"n": 1}, expected=0)
    outcome, save = _stale_save(store, r1)

    with other._write() as db:  # another process's save, in flight: r1 -> r2
        r2 = other._next_revision(db)
        db.execute(sa.text("UPDATE sessions SET revision = :r, snapshot = '{\"n\": 2}' WHERE id = 's'"), {"r": r2})
        waiting = threading.Thread(target=save)
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive()  # it waits for the counter's lock
    waiting.join(timeout=60)
    assert isinstance(outcome[0], ConversationConflictError) and store.read("s") == ({"n": 2}, r2)


def test_a_save_that_meets_a_delete_in_flight_is_refused(url, stores):
    store, other = stores(url), stores(url)
    r1 = store.save("s", {"n": 1}, expected=0)
    outcome, save = _stale_save(store, r1)

    with other._write() as db:  # another process deletes the conversation; not committed yet
        db.execute(sa.text("DELETE FROM sessions WHERE id = 's'"))
        waiting = threading.Thread(target=save)
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive()  # it waits for the deleted row (SQLite: for the file)
    waiting.join(timeout=60)
    assert isinstance(outcome[0], ConversationConflictError) and store.read("s") is None


def test_expiry_spares_a_session_saved_meanwhile(url, stores):
    store, other = stores(url), stores(url)
    store.save("a", {})
    store.save("b", {})
    time.sleep(1.2)
    other.save("b", {"again": True})  # saved again: no longer idle
    assert store.expire(0.6) == ["a"] and store.ids() == ["b"] and other.load("b") == {"again": True}


def test_schema_1_is_upgraded_in_place(url, stores):
    engine = sa.create_engine(engine_url(url))
    with engine.begin() as db:  # what schema 1 of the SQLite store wrote
        db.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        db.execute(sa.text("INSERT INTO schema_version VALUES (1)"))
        db.execute(sa.text("CREATE TABLE sessions (id TEXT PRIMARY KEY, updated DOUBLE PRECISION NOT NULL, "
                           "snapshot TEXT NOT NULL)"))
        db.execute(sa.text("INSERT INTO sessions VALUES ('old', :t, '{\"x\": 1}')"), {"t": time.time()})
    store = stores(url)
    assert store.read("old") == ({"x": 1}, 1)
    assert store.save("old", {"x": 2}, expected=1) > 1
    assert stores(url).load("old") == {"x": 2}  # opened again: nothing to upgrade
    with engine.begin() as db:
        assert db.execute(sa.text("SELECT version FROM schema_version")).all() == [(2,)]
        db.execute(sa.text("UPDATE schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(SessionStoreError, match="newer version"):
        stores(url)


def test_a_postgresql_database_in_any_encoding_keeps_text_as_text(postgres_server, stores):
    """A database made in the C locale is SQL_ASCII, whose text psycopg would hand back as bytes; the store
    asks for UTF-8."""
    import psycopg

    with psycopg.connect(postgres_server.replace("+psycopg", "") + "/postgres", autocommit=True) as db:
        db.execute("CREATE DATABASE bot_ascii ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
    store = stores(f"{postgres_server}/bot_ascii")
    store.save("é", {"text": "Ça va ✓"})
    assert store.read("é")[0] == {"text": "Ça va ✓"} and store.ids() == ["é"]


def test_sqlite_store_and_sqlalchemy_store_share_one_file(tmp_path, stores):
    """The same tables: a file either store wrote, the other reads and continues, revisions included."""
    plain = SQLiteStore(tmp_path / "s.db")
    r1 = plain.save("a", {"n": 1})
    through = stores(f"sqlalchemy+sqlite:///{tmp_path}/s.db")
    assert through.read("a") == ({"n": 1}, r1)
    r2 = through.save("a", {"n": 2}, expected=r1)
    assert plain.read("a") == ({"n": 2}, r2) and plain.save("b", {}) > r2
    fresh = stores(f"sqlite+pysqlite:///{tmp_path}/t.db")
    fresh.save("a", {"n": 1})
    assert SQLiteStore(tmp_path / "t.db").load("a") == {"n": 1}
    assert oct((tmp_path / "t.db").stat().st_mode & 0o777) == "0o600"  # conversations are private


# -- two bots on one store -----------------------------------------------------------------------------


def test_two_bots_on_one_store_continue_each_others_turns(url, stores):
    """Two bots (as two ``serve`` processes on two machines would) on one database answer alternate turns
    of one conversation: each continues from the other's newest save, exactly as one bot alone would."""
    assert_alternate_turns_match_one_bot(make_bot(stores(url)), make_bot(stores(url)), make_bot(None))


def test_a_turn_that_races_another_bot_is_not_kept(url, stores):
    assert_a_racing_turn_is_not_kept(stores(url), stores(url))


def test_a_conversation_deleted_or_expired_by_one_bot_is_gone_for_the_other(url, stores):
    a = make_bot(stores(url), ["One.", "Two.", "Three."], session_idle_expiry_s=0.3)
    b = make_bot(stores(url), ["Fresh start."])
    assert_a_delete_is_seen_by_the_other(a, b)
    b.chat("I lost my job today", session_id="old")
    time.sleep(0.4)
    a.chat("hello there friend", session_id="new")
    assert a.expire_sessions() == ["old"]
    assert b.history("old") == [] and b.sessions() == ["new"]  # b's live copy is dropped when next read


# -- URLs and errors -----------------------------------------------------------------------------------


def test_open_store_sends_urls_to_the_right_store(tmp_path):
    assert isinstance(open_store(f"sqlite:///{tmp_path}/a.db"), SQLiteStore)  # as before
    for spec in (f"sqlite+pysqlite:///{tmp_path}/b.db", f"sqlalchemy+sqlite:///{tmp_path}/c.db"):
        store = open_store(spec)
        assert isinstance(store, SQLAlchemyStore) and store.describe() == spec  # describe opens it again
        store.close()
    assert engine_url("postgresql://bot:pw@db/bot").drivername == "postgresql+psycopg"  # the extra's driver
    assert engine_url("postgres://bot:pw@db/bot").drivername == "postgresql+psycopg"
    assert engine_url("postgresql+psycopg2://db/bot").drivername == "postgresql+psycopg2"  # as named
    assert engine_url("sqlalchemy+sqlite:///x.db").drivername == "sqlite"
    for unsupported in ("redis://host/0", "sqlite://", "sqlalchemy+sqlite:///:memory:"):
        with pytest.raises(ValueError):
            open_store(unsupported)


def test_a_server_that_cannot_be_reached_is_a_clear_error_without_the_password():
    with pytest.raises(SessionStoreError, match="could not open the session store") as caught:
        open_store("postgresql://bot:s3cret@127.0.0.1:1/bot")  # nothing listens on port 1
    assert "s3cret" not in str(caught.value) and "bot:***@127.0.0.1:1" in str(caught.value)


def test_what_to_install_is_said_when_a_package_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # the driver is missing
    with pytest.raises(SessionStoreError, match=r"needs psycopg: pip install 'empathetic-bot\[postgres\]'"):
        open_store("postgresql://bot:s3cret@db/bot")
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # SQLAlchemy itself is missing
    monkeypatch.delitem(sys.modules, "bot.store_sql")
    with pytest.raises(SessionStoreError, match=r"needs SQLAlchemy.*pip install 'empathetic-bot\[postgres\]'") as e:
        open_store("postgresql://bot:s3cret@db/bot")
    assert "s3cret" not in str(e.value)
