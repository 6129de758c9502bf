"""Statements run on the event loop itself: no thread hand-off.

Profiling the hottest calls (a license read by id, a seat heartbeat) under load found
most of their server CPU outside the database: handing the request to a thread and
back (and the GIL passed between the thread and the loop at each step), then
SQLAlchemy's connection and result machinery around two short statements. Those calls
therefore run their statements here, on psycopg's asynchronous connections from a
small pool per event loop, in autocommit (each statement its own transaction, as the
protocol's hot calls are written for, and each read its own snapshot).

The statements stay SQLAlchemy Core, built once at module level and compiled here by
the write engine's dialect (psycopg's, ``%(name)s`` parameters) on first use; each
parameter goes through its type's bind processor, and rows come back as named tuples
with the statement's column names, datetimes in UTC as
:class:`licentia.server.db.base.UTCDateTime` gives them.

- :meth:`LoopStatements.first` and :meth:`LoopStatements.all` read.
- :meth:`LoopStatements.run` runs a function written for a SQLAlchemy ``Connection``
  (the cloud protocol's hot calls) unchanged: in a greenlet on the loop, its
  ``execute`` and ``scalar`` calls wait for psycopg without blocking the loop (the
  mechanism of SQLAlchemy's own asyncio extension, without its execution layer).

On SQLite, reads run on a read-only connection of the loop's own (a local lookup
costs less than the hand-off to a thread; in WAL mode it never waits for a writer),
with SQLAlchemy's result processors turning stored text into datetimes and JSON;
:meth:`LoopStatements.run` answers :data:`NOT_HERE` there, and writes stay on the
thread pool under the process's write lock. A loop this module has nothing open for
(an app served without its lifespan) gets NOT_HERE from every method.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import psycopg
from psycopg.pq import ExecStatus
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.util import await_only, greenlet_spawn

from licentia.server.db.core import CoreConnection

T = TypeVar("T")
log = logging.getLogger("licentia.db")
TUPLES_OK = ExecStatus.TUPLES_OK
APPLICATION_NAME = "licentia-loop"  # how pg_stat_activity shows these connections
_MAX_STATEMENTS = 256  # statements are module constants: more means one is built per call


class NotHere:
    """The answer when this loop has no pool: run the work another way."""


NOT_HERE: Final = NotHere()


class LoopStatements:
    """Per event loop that serves the app: a pool of asynchronous PostgreSQL
    connections, or SQLite's read-only connection."""

    def __init__(self, engine: Engine, *, size: int) -> None:
        url = engine.url
        self.postgresql = url.get_backend_name() == "postgresql"
        file = url.database if url.get_backend_name() == "sqlite" else None
        self._sqlite_file = file if file and file != ":memory:" else None
        self._sqlite: dict[asyncio.AbstractEventLoop, sqlite3.Connection] = {}
        self._dialect: Dialect = engine.dialect
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}
        self._compiled: dict[ClauseElement, _Compiled] = {}

    async def open(self) -> None:
        """Open a pool for the running loop (the app's lifespan calls this)."""
        if self._sqlite_file is not None:
            self._sqlite[asyncio.get_running_loop()] = _sqlite_reader(self._sqlite_file)
        if not self.postgresql:
            return
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._size,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": tuple_row,
                "options": "-c TimeZone=UTC -c plan_cache_mode=force_generic_plan",
                "application_name": APPLICATION_NAME,
            },
        )
        await pool.open(wait=False)
        self._pools[asyncio.get_running_loop()] = pool

    async def close(self) -> None:
        reader = self._sqlite.pop(asyncio.get_running_loop(), None)
        if reader is not None:
            reader.close()
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    def reads_here(self) -> bool:
        """Whether :meth:`first` and :meth:`all` can read on the running loop: with
        its pool, or on SQLite with its read-only connection."""
        loop = asyncio.get_running_loop()
        return loop in self._pools or loop in self._sqlite

    async def first(self, statement: ClauseElement, parameters: dict[str, Any]) -> Any:
        """The first row of the read ``statement`` (None if there is none), or
        NOT_HERE. A connection the database dropped (a restart) is tried once more."""
        rows = await self.all(statement, parameters)
        if isinstance(rows, NotHere):
            return NOT_HERE
        return rows[0] if rows else None

    async def all(self, statement: ClauseElement, parameters: dict[str, Any]) -> Any:
        """The rows of the read ``statement``, or NOT_HERE. A connection the database
        dropped (a restart) is tried once more, after the pool has replaced every idle
        connection the database dropped with it."""
        loop = asyncio.get_running_loop()
        reader = self._sqlite.get(loop)
        if reader is not None:
            return _read_sqlite(reader, self._compile(statement), parameters)
        pool = self._pools.get(loop)
        if pool is None:
            return NOT_HERE
        compiled = self._compile(statement)
        for attempt in range(2):
            try:
                connection = await pool.getconn()
                try:
                    return await _execute(connection, compiled, parameters)
                finally:
                    await pool.putconn(connection)
            except DBAPIError as error:
                if attempt or not isinstance(error.orig, psycopg.OperationalError):
                    raise
                await pool.check()  # a restart dropped its idle siblings too
        raise AssertionError("unreachable")

    async def run(self, work: Callable[[CoreConnection], T]) -> T | NotHere:
        """``work(connection)`` on one pooled connection in autocommit, or NOT_HERE.
        ``connection`` offers what the hot calls use of a SQLAlchemy Connection:
        ``execute(...)`` with ``first``, ``one``, ``all`` and ``scalar`` on its
        result, ``scalar(...)`` and ``dialect``. A connection the database dropped
        is replaced when the first statement finds it so (nothing was written yet)."""
        pool = self._pools.get(asyncio.get_running_loop())
        if pool is None:
            return NOT_HERE
        for attempt in range(2):
            connection = await pool.getconn()  # (not ``pool.connection()``: it costs more)
            on_loop = _OnLoop(self, connection)
            given: CoreConnection = on_loop  # what mypy checks the hot code against
            try:
                result: T = await greenlet_spawn(work, given)
                return result
            except DBAPIError:
                # A connection the database dropped (a restart) fails at the first
                # statement, before anything was written: run the work once more, on
                # another connection. Any other failure is the work's own.
                if attempt or on_loop.statements != 1 or not connection.broken:
                    raise
                await pool.check()  # a restart dropped its idle siblings too
            finally:
                await pool.putconn(connection)
        raise AssertionError("unreachable")

    def _compile(self, statement: ClauseElement) -> _Compiled:
        compiled = self._compiled.get(statement)
        if compiled is None:
            compiled = _Compiled(statement, self._dialect)
            if len(self._compiled) < _MAX_STATEMENTS:
                self._compiled[statement] = compiled
            else:
                log.warning("a statement is built per call; compiled again: %s", compiled.sql)
        return compiled


class _Compiled:
    """A statement compiled once: its SQL, and how to bind its parameters (the
    statement's own literal values added, each value through its type's processor)."""

    def __init__(self, statement: ClauseElement, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        self.sql = str(self.compiled)
        self._row_type: Any = None
        self._statement = statement
        self._dialect = dialect
        self.processors = {
            name: processor
            for name, bind in self.compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }

    def row_type(self, cursor: psycopg.AsyncCursor[Any] | sqlite3.Cursor) -> Any:
        """The named tuple of this statement's rows (made on its first rows: psycopg
        builds the cursor's description anew on every call)."""
        if self._row_type is None:
            description = cursor.description or ()
            self._row_type = _named_row([column[0] for column in description])
        return self._row_type

    @functools.cached_property
    def results(self) -> list[Any]:
        """Each column's result processor (SQLite: its text into Python values)."""
        columns = getattr(self._statement, "selected_columns", ())
        return [
            column.type.dialect_impl(self._dialect).result_processor(self._dialect, None)
            for column in columns
        ]

    def parameters(self, given: dict[str, Any]) -> dict[str, Any]:
        values = dict(self.compiled.construct_params(given))
        for name, processor in self.processors.items():
            if name in values:
                values[name] = processor(values[name])
        return values


async def _execute(
    connection: psycopg.AsyncConnection[Any], compiled: _Compiled, given: dict[str, Any]
) -> list[Any]:
    """The statement's rows (none for a statement without RETURNING). Errors are
    raised as SQLAlchemy's (IntegrityError, DataError, …), as its engine raises them."""
    parameters = compiled.parameters(given)
    try:
        cursor = await connection.execute(compiled.sql, parameters, prepare=True)
        result = cursor.pgresult
        if result is None or result.status != TUPLES_OK:
            return []  # no RETURNING
        rows = await cursor.fetchall()
    except psycopg.Error as error:
        raise DBAPIError.instance(compiled.sql, parameters, error, psycopg.Error) from error
    row_type = compiled.row_type(cursor)
    return [row_type._make(map(_in_utc, row)) for row in rows]


def _sqlite_reader(file: str) -> sqlite3.Connection:
    """A read-only connection for the loop's reads. SQLite reads a local file in
    microseconds (in WAL mode never waiting for a writer), less than handing the read
    to a thread would cost; a rare busy moment waits at most 50 ms."""
    reader = sqlite3.connect(
        f"{Path(file).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
    )
    reader.execute("PRAGMA busy_timeout = 50")
    return reader


def _read_sqlite(
    reader: sqlite3.Connection, compiled: _Compiled, given: dict[str, Any]
) -> list[Any]:
    """The rows of a read, on the loop's SQLite connection (SQLAlchemy's processors
    turn stored text into datetimes and JSON, as its engine does)."""
    values = compiled.parameters(given)
    order = compiled.compiled.positiontup or ()
    try:
        cursor = reader.execute(compiled.sql, [values[name] for name in order])
        rows = cursor.fetchall()
    except sqlite3.Error as error:
        raise DBAPIError.instance(compiled.sql, values, error, sqlite3.Error) from error
    if not rows:
        return []
    row_type = compiled.row_type(cursor)
    processors = compiled.results
    return [
        row_type._make(
            value if processor is None else processor(value)
            for processor, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


def _named_row(names: list[str]) -> Any:
    """Rows with attribute access by column name, as SQLAlchemy's Row has."""
    return namedtuple("Row", names)


def _in_utc(value: Any) -> Any:
    """The connections run with TimeZone=UTC, so this is a safeguard, not a conversion."""
    if isinstance(value, datetime) and value.tzinfo is not UTC:
        return value.astimezone(UTC)
    return value


class _Result:
    def __init__(self, rows: Sequence[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise ValueError(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def all(self) -> Sequence[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


class _OnLoop:
    """The part of a Connection the hot calls use, over a psycopg AsyncConnection;
    only usable inside :meth:`LoopStatements.run` (its greenlet)."""

    def __init__(self, owner: LoopStatements, connection: psycopg.AsyncConnection[Any]) -> None:
        self._owner = owner
        self._connection = connection
        self.statements = 0  # sent so far

    @property
    def dialect(self) -> Dialect:
        return self._owner._dialect

    def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> _Result:
        assert isinstance(statement, ClauseElement)
        compiled = self._owner._compile(statement)
        self.statements += 1
        return _Result(await_only(_execute(self._connection, compiled, dict(parameters or {}))))

    def scalar(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Any:
        return self.execute(statement, parameters).scalar()
