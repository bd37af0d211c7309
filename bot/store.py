"""Where conversations are kept: in memory, or in SQLite so that they survive restarts and crashes.

A session is stored as one snapshot (its messages, the emotion tracker's running state, the emotion
state after each user turn, and the crisis risk), written in one transaction when a turn's reply is
complete. A process killed mid-turn therefore loses at most the turn it was answering, and never
leaves a half-written session. Restored, a conversation continues exactly as it was: same history,
same emotion state, same risk.

    store = open_store("sqlite:///path/to/sessions.db")   # or a plain path ending in .db / .sqlite
    store = open_store("postgresql://bot@db/bot")         # a database server (bot.store_sql)
    store = open_store(None)                              # in memory (tests, throwaway bots)

The SQLite file runs in WAL mode, so several processes on one machine can share it; the schema has a
version table, and a file written by a newer version is refused rather than misread. Processes on
several machines share a database server instead: ``SQLAlchemyStore`` (``bot.store_sql``, the
``postgres`` extra) keeps the same tables, with the same revisions, in PostgreSQL or any database
SQLAlchemy reaches.

Every save gives the session a new *revision*, a number drawn from one counter for the whole store
(so a session deleted and begun again never repeats an old revision). A bot checks the revision (one
indexed read) before it answers in a session it holds in memory and reloads the session when the
store holds a newer one; its save names the revision it started from, and is refused with
``ConversationConflictError`` when another process has saved the session since. That is what lets
several processes serve the same conversations from one file.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Protocol

from .errors import ConversationConflictError, SessionStoreError

# 1: sessions (id, updated, snapshot). 2: sessions.revision and the revision_counter table.
SCHEMA_VERSION = 2


class SessionStore(Protocol):
    """What ``EmpatheticBot`` needs of a store. ``revision``, ``read`` and the ``expected`` argument
    of ``save`` may be left out by a store for one process only; the bot then trusts its live copies."""

    def load(self, session_id: str) -> dict | None: ...

    def read(self, session_id: str) -> tuple[dict, int] | None: ...

    def revision(self, session_id: str) -> int: ...

    def save(self, session_id: str, snapshot: dict, expected: int | None = None) -> int: ...

    def delete(self, session_id: str) -> bool: ...

    def ids(self) -> list[str]: ...

    def expire(self, idle_seconds: float) -> list[str]: ...

    def describe(self) -> str: ...


def _conflict(session_id: str, expected: int, found: int) -> ConversationConflictError:
    return ConversationConflictError(
        f"the conversation {session_id!r} was changed elsewhere while this turn was answered (it is at "
        f"revision {found}, the turn began from {expected}); the turn was not kept: please send it again")


class MemoryStore:
    """Snapshots in a dict (copied in and out, so callers never share state with the store)."""

    def __init__(self):
        self._data: dict[str, tuple[float, str, int]] = {}  # id -> (updated, snapshot JSON, revision)
        self._lock = threading.Lock()
        self._counter = 0

    def load(self, session_id: str) -> dict | None:
        found = self.read(session_id)
        return found[0] if found else None

    def read(self, session_id: str) -> tuple[dict, int] | None:
        """The snapshot and its revision, or None."""
        with self._lock:
            row = self._data.get(session_id)
        return (json.loads(row[1]), row[2]) if row else None

    def revision(self, session_id: str) -> int:
        """The session's revision; 0 when it is not stored."""
        with self._lock:
            row = self._data.get(session_id)
        return row[2] if row else 0

    def save(self, session_id: str, snapshot: dict, expected: int | None = None) -> int:
        """Store the snapshot and return its new revision. With ``expected`` (0: not stored yet), only
        if the stored revision is still that one; else ``ConversationConflictError``."""
        text = json.dumps(snapshot, ensure_ascii=False)
        with self._lock:
            if expected is not None:
                found = self._data[session_id][2] if session_id in self._data else 0
                if found != expected:
                    raise _conflict(session_id, expected, found)
            self._counter += 1
            self._data[session_id] = (time.time(), text, self._counter)
            return self._counter

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._data.pop(session_id, None) is not None

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._data)

    def expire(self, idle_seconds: float) -> list[str]:
        cutoff = time.time() - idle_seconds
        with self._lock:
            gone = [k for k, (t, _, _) in self._data.items() if t < cutoff]
            for k in gone:
                del self._data[k]
        return gone

    def describe(self) -> str:
        return "memory"


class SQLiteStore:
    """Snapshots in one SQLite table (``sessions``: id, updated, snapshot JSON, revision), WAL mode.

    Reads run outside an explicit transaction (one statement reads one consistent state in WAL mode,
    and never waits for a writer); every write is one ``BEGIN IMMEDIATE`` transaction."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            if row is not None and row[0] > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer version (schema {row[0]}); upgrade the package")
            # revision 1 for the sessions of a schema 1 file; later saves draw from the counter
            db.execute("CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, updated REAL NOT NULL, "
                       "snapshot TEXT NOT NULL, revision INTEGER NOT NULL DEFAULT 1)")
            db.execute("CREATE INDEX IF NOT EXISTS sessions_updated ON sessions (updated)")
            if row is not None and row[0] < 2:
                db.execute("ALTER TABLE sessions ADD COLUMN revision INTEGER NOT NULL DEFAULT 1")
            db.execute("CREATE TABLE IF NOT EXISTS revision_counter (value INTEGER NOT NULL)")
            if db.execute("SELECT value FROM revision_counter").fetchone() is None:
                db.execute("INSERT INTO revision_counter VALUES (1)")
            if row is None:
                db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] < SCHEMA_VERSION:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        try:
            os.chmod(self.path, 0o600)  # conversations are private
        except OSError:
            pass

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:  # one connection per thread
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            use_wal(db)
            self._local.db = db
        return db

    def _connect(self) -> "_Transaction":
        return _Transaction(self._db())

    def load(self, session_id: str) -> dict | None:
        found = self.read(session_id)
        return found[0] if found else None

    def read(self, session_id: str) -> tuple[dict, int] | None:
        """The snapshot and its revision (read together), or None."""
        row = self._db().execute("SELECT snapshot, revision FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return (json.loads(row[0]), row[1]) if row else None

    def revision(self, session_id: str) -> int:
        """The session's revision, 0 when it is not stored: one read of the primary-key index."""
        row = self._db().execute("SELECT revision FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return row[0] if row else 0

    def save(self, session_id: str, snapshot: dict, expected: int | None = None) -> int:
        """Store the snapshot and return its new revision. With ``expected`` (0: not stored yet), only
        if the stored revision is still that one, checked and written in one transaction; else
        ``ConversationConflictError`` and nothing is written."""
        text = json.dumps(snapshot, ensure_ascii=False)
        with self._connect() as db:
            if expected is not None:
                row = db.execute("SELECT revision FROM sessions WHERE id = ?", (session_id,)).fetchone()
                found = row[0] if row else 0
                if found != expected:
                    raise _conflict(session_id, expected, found)
            db.execute("UPDATE revision_counter SET value = value + 1")
            revision = db.execute("SELECT value FROM revision_counter").fetchone()[0]
            db.execute("INSERT INTO sessions (id, updated, snapshot, revision) VALUES (?, ?, ?, ?) ON CONFLICT(id) "
                       "DO UPDATE SET updated = excluded.updated, snapshot = excluded.snapshot, "
                       "revision = excluded.revision", (session_id, time.time(), text, revision))
        return revision

    def delete(self, session_id: str) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount > 0

    def ids(self) -> list[str]:
        return [r[0] for r in self._db().execute("SELECT id FROM sessions ORDER BY updated")]

    def expire(self, idle_seconds: float) -> list[str]:
        cutoff = time.time() - idle_seconds
        with self._connect() as db:
            gone = [r[0] for r in db.execute("SELECT id FROM sessions WHERE updated < ?", (cutoff,))]
            db.execute("DELETE FROM sessions WHERE updated < ?", (cutoff,))
        return gone

    def describe(self) -> str:
        return f"sqlite:///{self.path}"


def use_wal(db, timeout: float = 30.0) -> None:
    """WAL mode (readers never wait for the writer) and full syncs (a committed turn survives a power cut
    too) on a new SQLite connection. Switching a new file to WAL takes a lock that SQLite's busy handler
    does not wait for, so processes opening one new file at once can meet "database is locked": that
    is retried for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    db.execute("PRAGMA synchronous=FULL")


class _Transaction:
    """``with`` on a connection in autocommit mode: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def default_store_path() -> Path:
    """``$EMPATHETIC_BOT_DATA_HOME/sessions.db``, else ``$XDG_DATA_HOME/empathetic-bot/sessions.db``
    (``~/.local/share`` when unset)."""
    home = os.environ.get("EMPATHETIC_BOT_DATA_HOME")
    if home:
        return Path(home) / "sessions.db"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "empathetic-bot" / "sessions.db"


def open_store(spec: str | None) -> SessionStore:
    """``None``, ``""`` or ``"memory"``: in memory; ``"default"``: SQLite at ``default_store_path()``;
    ``sqlite:///PATH`` or a path: SQLite there. Any other URL is a database SQLAlchemy reaches
    (``SQLAlchemyStore``, which needs the ``postgres`` extra): ``postgresql://USER:PASSWORD@HOST/DB``
    (psycopg 3), ``postgresql+DRIVER://...``, ``mysql+pymysql://...``, ``sqlite+pysqlite:///PATH``...;
    ``sqlalchemy+`` in front sends any URL there, ``sqlalchemy+sqlite:///PATH`` too."""
    if not spec or spec == "memory":
        return MemoryStore()
    if spec == "default":
        return SQLiteStore(default_store_path())
    if spec.startswith("sqlite:///"):
        return SQLiteStore(spec[len("sqlite:///"):])
    if "://" in spec:
        try:
            from .store_sql import SQLAlchemyStore
        except ImportError as exc:
            if (exc.name or "").split(".")[0] != "sqlalchemy":
                raise
            raise SessionStoreError(f"the session store {hide_password(spec)} needs SQLAlchemy and a driver: "
                                    "pip install 'empathetic-bot[postgres]' (PostgreSQL: SQLAlchemy and psycopg), "
                                    "or SQLAlchemy and your database's driver") from exc
        return SQLAlchemyStore(spec)
    return SQLiteStore(spec)


def hide_password(spec: str) -> str:
    """A store URL fit for logs and messages: ``user:***@host`` for ``user:PASSWORD@host``."""
    return re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", spec)
