"""Appending to audit chains on PostgreSQL: one statement per chain, sent with the COMMIT.

A chain's head row is the one lock that every writer of a vendor queues for, and it is
held from the append until the COMMIT completes. Appending in Python took it with a
``SELECT … FOR UPDATE``, hashed, inserted and then committed: three waits for a
thread that shares one GIL with 40 others, while 10 to 13 writers queued on the row
behind a connection shown "idle in transaction". Here nothing between taking the lock
and releasing it waits for Python:

- PostgreSQL hashes. Python sends each event's canonical JSON (the text that
  ``licentia.domain.audit.event_hash`` hashes) cut into four pieces around the three
  values known only under the lock, ``at``, ``prev_hash`` and ``seq``; one statement
  locks the head, fills them in, chains the events with ``sha256``, inserts them and
  moves the head. ``verify_chains`` checks the result with the Python rule.
- When the append ends the transaction, the COMMIT goes out in the same psycopg
  pipeline, so the server releases the lock as soon as the append is done.

``at`` is PostgreSQL's clock when the head is locked, so it still grows with ``seq``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from licentia.domain.audit import GENESIS, HASHED_FIELDS
from licentia.domain.ids import new_id

# Each event's hash depends on the one before, so the statement chains them one by one
# with a recursive query whose cost grows with the square of their number: above this
# many events in one chain and transaction, Python hashes (services._append_in_python).
MAX_EVENTS = 256

_HOLES = ("at", "prev_hash", "seq")  # in the canonical JSON's (sorted) key order
_STRINGS = frozenset({"at", "prev_hash"})  # JSON strings; seq is a number
_KEYS = sorted({*HASHED_FIELDS, "prev_hash"})
# What each event row stores of its own (chain, seq and at come from the statement).
_STORED = tuple(name for name in HASHED_FIELDS if name not in {"chain", "seq", "at"})


def canonical_pieces(fields: Mapping[str, Any]) -> list[str]:
    """The canonical JSON of ``event_hash`` for ``fields`` as four pieces: joined with
    the JSON of ``at``, ``prev_hash`` and ``seq`` between them, they are that JSON.

    Encoded in one call, with a marker no event can hold (this process's random one)
    in each hole, then cut at the markers: one encoding per event instead of one per
    field. A text holding a marker all the same is encoded field by field."""
    content = {key: fields[key] for key in _KEYS if key not in _HOLES}
    text = _encode({**content, **_MARKED})
    if text.count(_MARKER) == len(_HOLES):
        first, rest = text.split(_MARKED["at"], 1)
        second, rest = rest.split(_MARKED["prev_hash"], 1)
        third, last = rest.split(f'"{_MARKED["seq"]}"', 1)
        return [first, second, third, last]
    return _pieces_field_by_field(fields)


_MARKER = secrets.token_hex(16)
_MARKED = {hole: f"{_MARKER}{hole}" for hole in _HOLES}


def _pieces_field_by_field(fields: Mapping[str, Any]) -> list[str]:
    pieces, current = [], "{"
    for label, key in _LABELS:
        current += label
        if key in _HOLES:
            quote = '"' if key in _STRINGS else ""
            pieces.append(current + quote)
            current = quote
        else:
            current += _encode(fields[key])
    pieces.append(current + "}")
    return pieces


# event_hash's json.dumps options; one encoder, as json.dumps makes one per call.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str).encode
_LABELS = tuple((("," if i else "") + json.dumps(key) + ":", key) for i, key in enumerate(_KEYS))


def append_events(
    connection: Connection, chains: Mapping[str, list[dict[str, Any]]], *, commit: bool
) -> None:
    """Append each chain's events (as ``record`` noted them), chains in the order given.

    With ``commit`` the transaction is committed too, the COMMIT sent in the same
    pipeline as the appends; the caller's COMMIT then finds it done. Raises
    SQLAlchemy's DBAPIError subclasses (IntegrityError when two transactions created a
    chain's first events at once), so that ``run_write`` retries as for any lost race.
    """
    statements = [_parameters(chain, events) for chain, events in chains.items()]
    if not commit:
        for parameters in statements:
            connection.exec_driver_sql(_APPEND, parameters)
        return
    driver = connection.connection.driver_connection
    assert driver is not None, "a live connection has a driver connection"
    dbapi_error = connection.dialect.loaded_dbapi.Error
    try:
        with driver.pipeline():
            for parameters in statements:
                driver.execute(_APPEND, parameters)
            driver.commit()
    except dbapi_error as error:
        raise DBAPIError.instance(
            _APPEND,
            None,
            error,
            dbapi_error,
            hide_parameters=True,
            connection_invalidated=driver.broken,  # lost while committing: never retried
        ) from error


def _parameters(chain: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The events as one JSON text. psycopg dumps a list parameter in Python: one
    array per column cost more CPU than the rest of the append together."""
    rows = []
    for event in events:
        row = {name: event[name] for name in _STORED}
        row["id"] = new_id()
        for index, piece in enumerate(canonical_pieces(event)):
            row[f"piece{index}"] = piece
        rows.append(row)
    return {"chain": chain, "genesis": GENESIS, "events": json.dumps(rows)}


# In psycopg's parameter style: it is sent through the driver, not compiled.
# ``locked`` waits for the head; a chain's first events start from GENESIS, and two
# transactions doing that at once collide on (chain, seq). ``chained`` walks the
# events in order, filling the pieces' holes with ``at``, the predecessor's hash and
# the next seq. The head is written last, inserted for a new chain. ``before`` and
# ``after`` are stored as SQLAlchemy's JSON type stores them: None as a JSON null.
_APPEND = """\
WITH RECURSIVE
events AS (
    SELECT * FROM ROWS FROM (json_to_recordset(%(events)s::json) AS (
        id text, actor_type text, actor_id text, action text, object_type text,
        object_id text, before jsonb, after jsonb, source_ip text,
        piece0 text, piece1 text, piece2 text, piece3 text
    )) WITH ORDINALITY AS e(id, actor_type, actor_id, action, object_type, object_id,
        before, after, source_ip, piece0, piece1, piece2, piece3, n)
),
pieces AS (
    SELECT count(*) AS total, array_agg(piece0 ORDER BY n) AS piece0,
        array_agg(piece1 ORDER BY n) AS piece1, array_agg(piece2 ORDER BY n) AS piece2,
        array_agg(piece3 ORDER BY n) AS piece3
    FROM events
),
locked AS (
    SELECT seq, hash FROM audit_heads WHERE chain = %(chain)s FOR UPDATE
),
head AS (
    SELECT coalesce(locked.seq, 0) AS seq, coalesce(locked.hash, %(genesis)s) AS hash
    FROM (VALUES (1)) AS one LEFT JOIN locked ON true
),
stamp AS (
    SELECT at, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS at_text
    FROM (SELECT clock_timestamp() AS at) AS now
),
chained (n, seq, prev_hash, hash) AS (
    SELECT 0::bigint, head.seq, NULL::text, head.hash::text FROM head
    UNION ALL
    SELECT c.n + 1, c.seq + 1, c.hash, encode(sha256(convert_to(
        p.piece0[c.n + 1] || s.at_text || p.piece1[c.n + 1] || c.hash
        || p.piece2[c.n + 1] || (c.seq + 1)::text || p.piece3[c.n + 1], 'UTF8')), 'hex')
    FROM chained AS c CROSS JOIN pieces AS p CROSS JOIN stamp AS s
    WHERE c.n < p.total
),
inserted AS (
    INSERT INTO audit_events (id, chain, seq, at, actor_type, actor_id, action,
        object_type, object_id, before, after, source_ip, prev_hash, hash)
    SELECT e.id, %(chain)s, c.seq, s.at, e.actor_type, e.actor_id, e.action,
        e.object_type, e.object_id, coalesce(e.before, 'null'), coalesce(e.after, 'null'),
        e.source_ip, c.prev_hash, c.hash
    FROM events AS e JOIN chained AS c ON c.n = e.n CROSS JOIN stamp AS s
)
INSERT INTO audit_heads (chain, seq, hash)
SELECT %(chain)s, seq, hash FROM chained ORDER BY n DESC LIMIT 1
ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, hash = excluded.hash
"""


def write_hashed_events(connection: Connection, chain: str, rows: list[dict[str, Any]]) -> None:
    """Insert events hashed in Python (``services._append_in_python``, for more than
    MAX_EVENTS) and move the head to the last, in one statement. The rows go as one
    JSON text, dumped by the C encoder: psycopg dumps list parameters (one array per
    column) in Python, and that happened while the head was locked (docs/benchmarks.md,
    "Large orders")."""
    last = rows[-1]
    events = json.dumps([{name: row[name] for name in _HASHED_ROW} for row in rows])
    parameters = {
        "chain": chain,
        "at": rows[0]["at"],  # one time for the whole append
        "seq": last["seq"],
        "hash": last["hash"],
        "events": events,
    }
    connection.exec_driver_sql(_WRITE_HASHED, parameters)


_HASHED_ROW = (*_STORED, "id", "seq", "prev_hash", "hash")
_WRITE_HASHED = """\
WITH moved_head AS (
    UPDATE audit_heads SET seq = %(seq)s, hash = %(hash)s WHERE chain = %(chain)s
)
INSERT INTO audit_events (id, chain, seq, at, actor_type, actor_id, action,
    object_type, object_id, before, after, source_ip, prev_hash, hash)
SELECT e.id, %(chain)s, e.seq, %(at)s, e.actor_type, e.actor_id, e.action,
    e.object_type, e.object_id, coalesce(e.before, 'null'), coalesce(e.after, 'null'),
    e.source_ip, e.prev_hash, e.hash
FROM json_to_recordset(%(events)s::json) AS e(id text, seq bigint, actor_type text,
    actor_id text, action text, object_type text, object_id text, before jsonb,
    after jsonb, source_ip text, prev_hash text, hash text)
"""
