"""Writing the rows of one order in as few round trips as the database allows.

An order adds a ticket, the order, its lines and their licenses: rows whose ids are
made in Python, so nothing has to be read back. On PostgreSQL the leading batches
of one row each (all of them, for the common single-line order of one unit) go out
as ONE statement, chained by data-modifying WITH clauses: foreign keys are checked
at the end of the statement, when every row exists. Larger batches follow as one
multi-row INSERT each. SQLite, in-process, simply runs them in order.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, insert

from licentia.server.db.base import Base

Batch = tuple[type[Base], list[dict[str, Any]]]
_Shape = tuple[tuple[type[Base], tuple[str, ...]], ...]


def write_rows(connection: Connection, batches: list[Batch]) -> None:
    """Insert ``batches`` (entity, rows) in order: a batch may refer to earlier ones."""
    rest = [batch for batch in batches if batch[1]]
    if connection.dialect.name == "postgresql":
        leading = 0
        while leading < len(rest) and len(rest[leading][1]) == 1:
            leading += 1
        if leading > 1:
            _insert_fused(connection, rest[:leading])
            rest = rest[leading:]
    for entity, rows in rest:
        # RETURNING lets SQLAlchemy send many rows as one multi-row INSERT
        # ("insertmanyvalues"); one row is a plain execute.
        connection.execute(_insert_many(entity), rows[0] if len(rows) == 1 else rows)


def _insert_fused(connection: Connection, batches: list[Batch]) -> None:
    shape = tuple((entity, tuple(rows[0])) for entity, rows in batches)
    params = {
        f"w{i}_{name}": value
        for i, (_, rows) in enumerate(batches)
        for name, value in rows[0].items()
    }
    connection.execute(_fused_statement(shape), params)


@functools.lru_cache(maxsize=32)
def _fused_statement(shape: _Shape) -> Insert:
    """``WITH w0 AS (INSERT ...), w1 AS (INSERT ...) INSERT ...`` for one row per
    entity, built once per shape so that SQLAlchemy's compiled cache is hit."""
    inserts = [
        insert(entity).values(
            {name: bindparam(f"w{i}_{name}", type_=entity.__table__.c[name].type) for name in names}
        )
        for i, (entity, names) in enumerate(shape)
    ]
    *leading, last = inserts
    return last.add_cte(*(statement.cte(f"w{i}") for i, statement in enumerate(leading)))


@functools.lru_cache(maxsize=32)
def _insert_many(entity: type[Base]) -> Insert:
    return insert(entity).returning(*entity.__mapper__.primary_key)
