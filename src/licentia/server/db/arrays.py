"""Many requests in one statement: parallel array parameters read as rows.

The batched statements (seat checkouts and releases, heartbeats, unit consumptions)
send one array per field of the requests they serve and read them back, on
PostgreSQL, as a derived table of one row per request (``unnest`` of the arrays,
position by position). :func:`unnested` builds that table from one list of its
columns, so that a column's parameter, name and type are written once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, column, func
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

Column = tuple[str, str, type[TypeEngine[Any]] | TypeEngine[Any]]


def unnested(name: str, *columns: Column, numbered: bool = False) -> TableValuedAlias:
    """The derived table ``name`` of the arrays given as ``(parameter, column, type)``:
    row *i* holds element *i* of each parameter; with ``numbered``, a column ``n``
    holds *i* (from 1), the order the requests were given in."""
    arrays = func.unnest(
        *(bindparam(parameter, type_=ARRAY(kind)) for parameter, _, kind in columns)
    )
    named = [column(name_, kind) for _, name_, kind in columns]
    table = (
        arrays.table_valued(*named, with_ordinality="n")
        if numbered
        else arrays.table_valued(*named)
    )
    return table.render_derived(name=name)
