"""Engines and sessions.

SQLite runs in WAL mode with foreign keys on; write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue for the lock at the start instead of
failing half-way with "database is locked". Within one process, writers also queue
on a lock of their own: SQLite's busy handler polls with growing sleeps, which left
the lock idle between turns and let a writer wait seconds; a Python lock hands the
turn over at once. Reads use a second engine with plain deferred transactions, so
they never wait for writers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


@dataclass(frozen=True)
class Database:
    """The storage handles one process shares: a write and a read session factory."""

    write_engine: Engine
    read_engine: Engine
    writer: sessionmaker[Session]
    reader: sessionmaker[Session]
    write_lock: AbstractContextManager[Any] = field(default_factory=nullcontext)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write unit of work: committed when the block ends, rolled back on error."""
        with self.write_lock, self.writer.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.reader() as session:
            yield session

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine.pool is not self.write_engine.pool:
            self.read_engine.dispose()


T = TypeVar("T")
_RETRIES = 5
_PING_AFTER_IDLE_SECONDS = 5.0


def run_write(db: Database, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a write transaction; retry when a concurrent transaction won a
    uniqueness race (the retry then finds the winner's row), PostgreSQL asks for it, or
    the database dropped the connection before the commit was sent (nothing of the
    transaction was kept, so running it again on a new connection is safe).

    A connection lost while committing is not retried: whether the commit arrived is
    unknown. That error (``connection_invalidated``) reaches the caller."""
    for attempt in range(_RETRIES):
        committing = False
        try:
            with db.transaction() as session:
                result = work(session)
                committing = True
            return result
        except (IntegrityError, OperationalError) as error:
            if attempt == _RETRIES - 1 or not _retryable(error, committing=committing):
                raise
    raise AssertionError("unreachable")


def run_read(db: Database, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a read session; run it again on a new connection if the database
    dropped the one it had (a restart, a failover, ``pg_terminate_backend``)."""

    def once() -> T:
        with db.read() as session:
            return work(session)

    return _again_if_dropped(once)


def _again_if_dropped(read: Callable[[], T]) -> T:
    for attempt in range(_RETRIES):
        try:
            return read()
        except DBAPIError as error:
            if attempt == _RETRIES - 1 or not error.connection_invalidated:
                raise
    raise AssertionError("unreachable")


def _retryable(error: DBAPIError, *, committing: bool) -> bool:
    if isinstance(error, IntegrityError):
        return True
    if error.connection_invalidated:
        return not committing
    # PostgreSQL serialization failures and deadlocks are safe to retry.
    return getattr(error.orig, "sqlstate", None) in {"40001", "40P01"}


def conninfo(database_url: str) -> str:
    """libpq's address for the SQLAlchemy URL ``database_url`` (for a connection of
    psycopg's own, such as one that LISTENs)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def connect(url: str, *, pool_size: int = 10) -> Database:
    """Open the database at ``url`` (SQLite file or PostgreSQL via psycopg 3).

    The engines hide statements' parameters from their errors: a failed statement is
    logged with its traceback, and its parameters may be a password hash, a ticket
    code's lookup hash, an e-mail address or a sealed secret."""
    parsed = make_url(url)
    write_lock: AbstractContextManager[Any] = nullcontext()
    if parsed.get_backend_name() == "sqlite":
        writer = _sqlite_engine(url, immediate=True)
        reader = _sqlite_engine(url, immediate=False)
        write_lock = threading.RLock()  # reentrant: a nested writer fails, never hangs
    else:
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        writer = create_engine(
            parsed, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
        )
        _ping_when_idle(writer)
        # Reads share the pool without a transaction: under READ COMMITTED each
        # statement sees its own snapshot either way, and autocommit spares a BEGIN
        # and a ROLLBACK round trip per request.
        reader = writer.execution_options(isolation_level="AUTOCOMMIT")
    readers = sessionmaker(reader, expire_on_commit=False)
    event.listen(readers, "before_flush", _refuse_writes)
    return Database(
        write_engine=writer,
        read_engine=reader,
        writer=sessionmaker(writer, expire_on_commit=False),
        reader=readers,
        write_lock=write_lock,
    )


def _refuse_writes(_session: Session, _context: Any, _instances: Any) -> None:
    """A read session that tries to write is a bug: with autocommit reads the write
    would stick outside any unit of work (and outside the audit log)."""
    raise RuntimeError("a read session cannot write: use Database.transaction()")


def _ping_when_idle(engine: Engine) -> None:
    """Test a pooled connection before reuse if it sat idle for a while.

    A restart of the database or a firewall cuts connections that wait in the pool;
    such a connection is pinged and, if dead, replaced before a request gets it. One
    in constant use needs no ping: a ping on every checkout cost a round trip per
    request, and a disconnect found mid-request still invalidates the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < _PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise DisconnectionError("a pooled connection was dead") from error


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below own transaction start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)

    return engine
