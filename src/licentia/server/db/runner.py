"""One way to run a unit of statements, wherever it is cheapest to run it.

The hot calls run their statements on the event loop when they can
(:mod:`licentia.server.db.loop_statements`), and on the thread pool, in a
transaction, when they must. Which of the two depends on the database and on whether
the running loop has connections of its own; :class:`Runner` decides it, so that no
caller ever asks:

- :meth:`Runner.read` runs a read on a :class:`CoreConnection`: on PostgreSQL on the
  loop's pool; else on the thread pool, on a read connection.
- :meth:`Runner.autocommit` runs statements that are each complete on their own (the
  cloud protocol's hot calls): on PostgreSQL on the loop's pool in autocommit (or on
  the thread pool in autocommit, on a loop without a pool); on SQLite on the thread
  pool in one write transaction under the process's write lock.
- :meth:`Runner.transaction` runs ORM work in one write transaction on the thread
  pool, retried when it lost a uniqueness race (:func:`run_write`).
- :meth:`Runner.first` and :meth:`Runner.all` read one statement's rows: on the
  loop (PostgreSQL's pool, SQLite's read-only connection) or else on the thread pool.

Work given to :meth:`read` and :meth:`autocommit` sees a :class:`CoreConnection`:
the part of a SQLAlchemy ``Connection`` that the loop's connections offer as well, so
that mypy checks that hot code uses nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

from licentia.server.db.core import CoreConnection
from licentia.server.db.engine import Database, run_write
from licentia.server.db.loop_statements import LoopStatements, NotHere

T = TypeVar("T")


class Runner:
    """Runs units of statements on the loop or on the thread pool (see the module)."""

    def __init__(self, db: Database, loop: LoopStatements) -> None:
        self.db = db
        self.loop = loop
        self.postgresql = db.write_engine.dialect.name == "postgresql"

    async def read(self, work: Callable[[CoreConnection], T]) -> T:
        """``work`` on a connection that sees committed data; it must not write."""
        if self.postgresql:
            done = await self.loop.run(work)
            if not isinstance(done, NotHere):
                return done
        return await in_thread(self._read_blocking, work)

    async def autocommit(self, work: Callable[[CoreConnection], T]) -> T:
        """``work`` whose every statement is complete on its own: on PostgreSQL each
        commits by itself; on SQLite they run in one write transaction."""
        if self.postgresql:
            done = await self.loop.run(work)
            if not isinstance(done, NotHere):
                return done
        return await in_thread(self.autocommit_blocking, work)

    async def transaction(self, work: Callable[[Session], T]) -> T:
        """``work`` in one write transaction on the thread pool (:func:`run_write`)."""
        return await in_thread(run_write, self.db, work)

    async def all(
        self, statement: Select[*tuple[Any, ...]], parameters: dict[str, Any]
    ) -> Sequence[Any]:
        """The rows of the read ``statement``."""
        if self.loop.reads_here():
            rows = await self.loop.all(statement, parameters)
            if not isinstance(rows, NotHere):
                return list(rows)
        return await self.read(lambda connection: connection.execute(statement, parameters).all())

    async def first(self, statement: Select[*tuple[Any, ...]], parameters: dict[str, Any]) -> Any:
        """The first row of the read ``statement``, None if there is none."""
        rows = await self.all(statement, parameters)
        return rows[0] if rows else None

    def _read_blocking(self, work: Callable[[CoreConnection], T]) -> T:
        with self.db.read_engine.connect() as connection:
            return work(connection)

    def autocommit_blocking(self, work: Callable[[CoreConnection], T]) -> T:
        """:meth:`autocommit` for a caller on a thread already."""
        if self.postgresql:
            with self.db.write_engine.connect() as connection:
                return work(connection.execution_options(isolation_level="AUTOCOMMIT"))
        with self.db.write_lock, self.db.write_engine.begin() as connection:
            return work(connection)


async def in_thread(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` on the running loop's default executor (the app sizes it)."""
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)
