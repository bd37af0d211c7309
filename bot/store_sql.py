"""Conversations in a database reached through SQLAlchemy: PostgreSQL above all, so that several
``serve`` processes on different machines share their conversations.

    store = open_store("postgresql://bot@db.internal/bot")              # psycopg 3; password: $PGPASSWORD
    store = SQLAlchemyStore("sqlite+pysqlite:///path/to/sessions.db")   # any SQLAlchemy URL

It needs the ``postgres`` extra (``pip install 'empathetic-bot[postgres]'``: SQLAlchemy 2 and psycopg 3),
or SQLAlchemy and the driver of another database. Its interface and meaning are those of
``SQLiteStore`` (see ``bot.store``), and so are its tables, so a SQLite file either store wrote, the
other reads: ``sessions`` (id, updated, snapshot JSON, revision), ``revision_counter`` (one row: the
last revision given) and ``schema_version``.

**Saves.** A save is one transaction that begins by incrementing the counter row (``UPDATE
revision_counter SET value = value + 1 RETURNING value``). That statement takes the row's lock and
holds it to the commit, so saves are serialised store-wide: each revision is given once, in commit
order, and a conversation deleted and begun again never repeats one. The write itself is then guarded:
``UPDATE sessions ... WHERE id = :id AND revision = :expected``, and for a new session (``expected``
0) an ``INSERT`` only if no row exists. Nothing changed means another process saved or deleted the
session since the turn began: the transaction is rolled back (the counter with it) and the save raises
``ConversationConflictError``.

On PostgreSQL the store pins READ COMMITTED: each statement then sees every transaction committed
before it began, so the save that waited for the counter's lock sees the save it waited for. (A server
whose default is REPEATABLE READ would instead abort the waiting save with a serialisation failure.)
Deletes and expiry do not take the counter's lock; they lock the rows they delete. A guarded UPDATE
that meets such a row waits for the delete, finds the row gone and reports a conflict; a delete that
meets a row a save is writing waits for the save, then reads the new row again (a session saved just
now is no longer idle, and is not expired). Either way the outcome is that of one order or the other,
and a stale save never brings back a deleted conversation.

Why a counter row and not an optimistic ``UPDATE ... WHERE revision = :expected`` alone with a
PostgreSQL sequence: a sequence exists on few databases (not SQLite), and its numbers are given in
the order saves begin, not the order they commit. The price of the counter row is that saves wait for
one another; each holds the lock for a few statements and the commit (no model work runs inside), so
this bounds a store to some hundreds of saves a second, one save per turn.

**Reads** (``revision``, ``read``, ``ids``) are single statements; on PostgreSQL they run in
autocommit mode, one round trip each. ``revision``, which the bot makes before each turn, reads the
primary-key index.

**Schema.** The version table works as in the SQLite store (the same numbers): a new database gets
the tables, an older schema is upgraded in place when the store opens (``_UPGRADES``, one step so
far), a newer one is refused. On PostgreSQL this runs in one transaction (its DDL is transactional:
an upgrade is applied whole or not at all) under an advisory lock, so replicas started together do not
race to create the tables. Alembic is not used: it would add a dependency, a migrations folder to
ship, and a command to run before each deployment, for three small tables whose one upgrade step the
store applies itself, as the SQLite store does.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url

from .errors import SessionStoreError
from .store import SCHEMA_VERSION, _conflict, hide_password

_metadata = sa.MetaData()
# TEXT as SQLiteStore writes it; MySQL cannot make a TEXT column the primary key
_ID = sa.Text().with_variant(sa.String(255), "mysql", "mariadb")
_sessions = sa.Table(
    "sessions", _metadata,
    sa.Column("id", _ID, primary_key=True),
    sa.Column("updated", sa.Double, nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False, server_default="1"),
    sa.Index("sessions_updated", "updated"),
)
_counter = sa.Table("revision_counter", _metadata, sa.Column("value", sa.BigInteger, nullable=False))
_version = sa.Table("schema_version", _metadata, sa.Column("version", sa.Integer, nullable=False))

# pg_advisory_xact_lock key while the schema is checked and upgraded (any fixed number: "empathet")
_SCHEMA_LOCK = 0x656D7061746865

# What the driver of a database is called on PyPI, for the error when it is missing.
_DRIVERS = {"postgresql": "empathetic-bot[postgres]"}


def _upgrade_to_2(db: sa.Connection) -> None:
    """Schema 1 had no revisions: its sessions get revision 1, and the counter starts there."""
    db.execute(sa.text("ALTER TABLE sessions ADD COLUMN revision BIGINT NOT NULL DEFAULT 1"))
    _counter.create(db, checkfirst=True)
    if db.execute(sa.select(_counter.c.value)).first() is None:
        db.execute(sa.insert(_counter).values(value=1))


# version -> the step that brings a store at version - 1 to it
_UPGRADES = {2: _upgrade_to_2}


def engine_url(spec: str | URL) -> URL:
    """The SQLAlchemy URL of a store URL: ``sqlalchemy+`` in front is dropped (it sends a ``sqlite:///``
    URL here rather than to ``SQLiteStore``), and ``postgresql://`` or ``postgres://`` without a driver
    name uses psycopg 3, the driver the ``postgres`` extra installs."""
    if isinstance(spec, str):
        spec = spec[len("sqlalchemy+"):] if spec.startswith("sqlalchemy+") else spec
        for bare in ("postgresql://", "postgres://"):
            if spec.startswith(bare):
                spec = "postgresql+psycopg://" + spec[len(bare):]
        try:
            spec = make_url(spec)
        except sa.exc.ArgumentError as exc:
            raise ValueError(f"not a database URL: {hide_password(spec)!r}") from exc
    return spec


class SQLAlchemyStore:
    """Snapshots in a database SQLAlchemy reaches, PostgreSQL above all (see the module's notes).

    ``url`` is a SQLAlchemy URL (``engine_url`` reads it); ``engine_options`` go to
    ``sqlalchemy.create_engine`` (``pool_size=...``, for example)."""

    def __init__(self, url: str | URL, **engine_options):
        self.url = engine_url(url)
        backend = self.url.get_backend_name()
        self._sqlite = backend == "sqlite"
        self._postgres = backend == "postgresql"
        if self._sqlite and self.url.database in (None, "", ":memory:"):
            raise ValueError("a SQLite store needs a file: sqlite+pysqlite:///PATH (or --store memory)")
        # a pooled connection the server dropped (a restart, a failover) is replaced before use, not failed on
        options: dict = {"pool_pre_ping": not self._sqlite}
        if self._postgres:
            options["isolation_level"] = "READ COMMITTED"  # see the module's notes
            # UTF-8 text whatever the database's encoding (one made in the C locale is SQL_ASCII, whose
            # text would come back as bytes), and no endless wait for a server that does not answer
            options["connect_args"] = {k: v for k, v in (("client_encoding", "utf8"), ("connect_timeout", 10))
                                       if k not in self.url.query}
        elif self._sqlite:
            options["connect_args"] = {"timeout": 30}
        options.update(engine_options)
        try:
            self.engine = sa.create_engine(self.url, **options)
        except sa.exc.NoSuchModuleError as exc:
            raise ValueError(f"unsupported session store {self.describe()!r}: SQLAlchemy knows no such "
                             "database") from exc
        except ImportError as exc:
            package = _DRIVERS.get(backend, f"the {self.url.get_driver_name()} driver")
            raise SessionStoreError(f"the session store {self.describe()} needs {exc.name or 'its driver'}: "
                                    f"pip install '{package}'") from exc
        if self._sqlite:
            event.listen(self.engine, "connect", _sqlite_connected)
        # reads in autocommit: one round trip each, no BEGIN and ROLLBACK around them
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT") if self._postgres else self.engine
        try:
            self._prepare()
        except sa.exc.DBAPIError as exc:
            self.engine.dispose()
            raise SessionStoreError(f"could not open the session store {self.describe()}: "
                                    f"{' '.join(str(exc.orig).split()) or type(exc.orig).__name__}") from exc
        except BaseException:
            self.engine.dispose()
            raise
        if self._sqlite:
            try:
                os.chmod(self.url.database, 0o600)  # conversations are private
            except OSError:
                pass

    @contextmanager
    def _write(self):
        """One write transaction (``BEGIN IMMEDIATE`` on SQLite, so two writers never deadlock on an upgrade
        of their read locks): committed when the block ends, rolled back if it raises."""
        with self.engine.begin() as db:
            if self._sqlite:
                db.exec_driver_sql("BEGIN IMMEDIATE")
            yield db

    def _prepare(self) -> None:
        """Create the tables, or upgrade them to ``SCHEMA_VERSION``; refuse a newer schema."""
        with self._write() as db:
            if self._postgres:
                db.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            _version.create(db, checkfirst=True)
            found = db.execute(sa.select(_version.c.version)).scalar()
            if found is not None and found > SCHEMA_VERSION:
                raise SessionStoreError(f"{self.describe()} was written by a newer version (schema {found}); "
                                        "upgrade the package")
            if found is None:
                _metadata.create_all(db, tables=[_sessions, _counter])
                if db.execute(sa.select(_counter.c.value)).first() is None:
                    db.execute(sa.insert(_counter).values(value=1))
                db.execute(sa.insert(_version).values(version=SCHEMA_VERSION))
            elif found < SCHEMA_VERSION:
                for version in range(found + 1, SCHEMA_VERSION + 1):
                    _UPGRADES[version](db)
                db.execute(sa.update(_version).values(version=SCHEMA_VERSION))

    def load(self, session_id: str) -> dict | None:
        found = self.read(session_id)
        return found[0] if found else None

    def read(self, session_id: str) -> tuple[dict, int] | None:
        """The snapshot and its revision (read together), or None."""
        with self._reader.connect() as db:
            row = db.execute(sa.select(_sessions.c.snapshot, _sessions.c.revision)
                             .where(_sessions.c.id == session_id)).first()
        return (json.loads(row[0]), row[1]) if row else None

    def revision(self, session_id: str) -> int:
        """The session's revision, 0 when it is not stored: one read of the primary-key index."""
        with self._reader.connect() as db:
            found = db.execute(sa.select(_sessions.c.revision).where(_sessions.c.id == session_id)).scalar()
        return found or 0

    def save(self, session_id: str, snapshot: dict, expected: int | None = None) -> int:
        """Store the snapshot and return its new revision. With ``expected`` (0: not stored yet), only
        if the stored revision is still that one, checked and written in one transaction; else
        ``ConversationConflictError`` and nothing is written."""
        values = {"updated": time.time(), "snapshot": json.dumps(snapshot, ensure_ascii=False)}
        try:
            with self._write() as db:
                values["revision"] = revision = self._next_revision(db)
                if expected == 0:
                    if db.execute(sa.select(_sessions.c.revision).where(_sessions.c.id == session_id)).first():
                        raise _Conflict
                else:
                    where = _sessions.c.id == session_id
                    if expected is not None:
                        where = sa.and_(where, _sessions.c.revision == expected)
                    if db.execute(sa.update(_sessions).where(where).values(values)).rowcount == 1:
                        return revision
                    if expected is not None:
                        raise _Conflict
                db.execute(sa.insert(_sessions).values(id=session_id, **values))
            return revision
        except _Conflict:
            raise _conflict(session_id, expected, self.revision(session_id)) from None
        except sa.exc.IntegrityError:
            if expected != 0:
                raise
            # a database that reads an older snapshot than the counter's lock promises (not PostgreSQL)
            raise _conflict(session_id, expected, self.revision(session_id)) from None

    def _next_revision(self, db: sa.Connection) -> int:
        """Increment the counter (taking its row's lock until the commit) and return the new value."""
        step = sa.update(_counter).values(value=_counter.c.value + 1)
        if self.engine.dialect.update_returning:
            return db.execute(step.returning(_counter.c.value)).scalar_one()
        db.execute(step)
        return db.execute(sa.select(_counter.c.value)).scalar_one()

    def delete(self, session_id: str) -> bool:
        with self._write() as db:
            return db.execute(sa.delete(_sessions).where(_sessions.c.id == session_id)).rowcount > 0

    def ids(self) -> list[str]:
        with self._reader.connect() as db:
            return list(db.execute(sa.select(_sessions.c.id).order_by(_sessions.c.updated)).scalars())

    def expire(self, idle_seconds: float) -> list[str]:
        idle = _sessions.c.updated < time.time() - idle_seconds
        with self._write() as db:
            if self.engine.dialect.delete_returning:
                return list(db.execute(sa.delete(_sessions).where(idle).returning(_sessions.c.id)).scalars())
            gone = list(db.execute(sa.select(_sessions.c.id).where(idle).with_for_update()).scalars())
            db.execute(sa.delete(_sessions).where(idle))
        return gone

    def describe(self) -> str:
        """The URL, password hidden; ``open_store`` given it opens this store again."""
        text = self.url.render_as_string(hide_password=True)
        return "sqlalchemy+" + text if text.startswith("sqlite:///") else text

    def close(self) -> None:
        """Close the pooled connections (the store opens new ones if used again)."""
        self.engine.dispose()


class _Conflict(Exception):
    """Raised inside a save's transaction to roll it back; the caller raises ConversationConflictError."""


def _sqlite_connected(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling off: the store says BEGIN IMMEDIATE itself (see _write), and
    # reads run outside a transaction, as in SQLiteStore; WAL lets readers and a writer share the file
    from .store import use_wal

    dbapi_connection.isolation_level = None
    use_wal(dbapi_connection)
