"""Reads on the event loop itself, for PostgreSQL: no thread hand-off, no ORM.

A license read by id through a session on the thread pool cost about 0.5 ms of the
server's CPU, five times a trivial answer: the hand-off to a thread and back (and the
GIL passed between them), SQLAlchemy's connection and result machinery, then the
statement itself. The hottest reads therefore run here, with psycopg's asynchronous
connections from a small pool, in autocommit (each statement its own snapshot, as
the thread pool's reads have), on the event loop that serves the request.

A statement is written once, with SQLAlchemy Core, and compiled here by the write
engine's dialect (psycopg's, with ``%(name)s`` parameters) on first use; rows come
back as named tuples with the same column names, datetimes in UTC as
:class:`licentia.server.db.base.UTCDateTime` gives them.
SQLite has no such driver here: :meth:`AsyncReads.first` answers :data:`NOT_HERE`
and the caller reads on the thread pool as before. So does a loop this module has
no pool for (an app served without its lifespan).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Engine, Select


class _NotHere:
    """The answer when this loop has no pool: read another way."""


NOT_HERE: Final = _NotHere()
APPLICATION_NAME = "licentia-async-reads"


class AsyncReads:
    """One pool of asynchronous connections per event loop that serves the app."""

    def __init__(self, engine: Engine, *, size: int) -> None:
        url = engine.url
        self.enabled = url.get_backend_name() == "postgresql"
        self._dialect = engine.dialect
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._pools: dict[asyncio.AbstractEventLoop, AsyncConnectionPool[Any]] = {}
        self._sql: dict[int, str] = {}

    async def open(self) -> None:
        """Open a pool for the running loop (the app's lifespan calls this)."""
        if not self.enabled:
            return
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._size,
            open=False,
            kwargs={
                "autocommit": True,
                "row_factory": namedtuple_row,
                "options": "-c TimeZone=UTC",
                "application_name": APPLICATION_NAME,  # pg_stat_activity shows whose
            },
        )
        await pool.open(wait=False)
        self._pools[asyncio.get_running_loop()] = pool

    async def close(self) -> None:
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()

    async def first(self, statement: Select[Any], parameters: dict[str, Any]) -> Any:
        """The first row of ``statement`` (None if there is none), or NOT_HERE.
        ``statement`` is built once (at module level): it is compiled once."""
        pool = self._pools.get(asyncio.get_running_loop())
        if pool is None:
            return NOT_HERE
        sql = self._sql.get(id(statement))
        if sql is None:
            sql = self._sql[id(statement)] = str(statement.compile(dialect=self._dialect))
        for attempt in range(2):
            try:
                async with pool.connection() as connection:
                    cursor = await connection.execute(sql, parameters, prepare=True)
                    row = await cursor.fetchone()
                break
            except psycopg.OperationalError:
                # A pooled connection the database closed (a restart): the pool drops
                # it; one more try gets a new one.
                if attempt:
                    raise
        return None if row is None else row._replace(**_in_utc(row))


def _in_utc(row: Any) -> dict[str, datetime]:
    return {
        name: value.astimezone(UTC)
        for name, value in row._asdict().items()
        if isinstance(value, datetime)
    }
