"""Appending to and reading the audit log."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    bindparam,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.audit import GENESIS, HASHED_FIELDS, ChainBreak, find_break
from licentia.domain.ids import new_id
from licentia.server.audit import _postgres
from licentia.server.audit.models import AuditEvent, AuditHead
from licentia.server.db.base import utcnow


def record(
    session: Session,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str | None,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    chain: str | None = None,
) -> None:
    """Record one event for the actor's vendor chain (or ``chain``).

    The event is appended when the caller's transaction commits, in the same
    transaction (``_append_pending``): it exists if and only if the change does.
    """
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    pending.append(
        {
            "chain": chain or actor.chain,
            "actor_type": actor.kind.value,
            "actor_id": actor.id,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "before": before,
            "after": after,
            "source_ip": actor.source_ip,
        }
    )


_PENDING = "licentia.audit.pending"
PENDING_EVENTS = _PENDING  # the session.info key of a transaction's events, in record order


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    """Chain the transaction's events onto their chains as the commit begins.

    Each chain's head row is locked here and released by the commit. Concurrent
    writers of one vendor thus queue for this last step only, not for their whole
    transaction (which made them run one at a time), and the chain stays linear.
    ``at`` is the time of the append, so it grows with ``seq`` (strictly where
    PostgreSQL reads its clock under the lock).

    On PostgreSQL the lock is held for one statement and the COMMIT, sent together
    when this commit ends the session's transaction (``_postgres``); chains with
    more events than one statement chains well are appended by ``_append_in_python``.
    """
    pending: list[dict[str, Any]] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    session.flush()  # the changes themselves first, before the head is locked
    connection = session.connection()
    chains: dict[str, list[dict[str, Any]]] = {}
    for chain in sorted({e["chain"] for e in pending}):  # one lock order: no deadlocks
        chains[chain] = [e for e in pending if e["chain"] == chain]
    if connection.dialect.name == "postgresql" and all(
        len(events) <= _postgres.MAX_EVENTS for events in chains.values()
    ):
        _postgres.append_events(connection, chains, commit=_ends_transaction(session))
        return
    _append_in_python(connection, chains)


def _ends_transaction(session: Session) -> bool:
    """Whether this commit ends the database transaction: the session opened its
    connection itself (it was not handed a caller's transaction to join) and is not
    releasing a savepoint."""
    return isinstance(session.bind, Engine) and not session.in_nested_transaction()


def _append_in_python(connection: Connection, chains: dict[str, list[dict[str, Any]]]) -> None:
    """Lock each head, hash the events here, and write them with one multi-row INSERT
    and one UPDATE: no ORM bookkeeping while the lock is held.

    Each event's canonical JSON (``event_hash``'s) is made before any head is locked,
    cut around the two values only the head gives (``prev_hash`` and ``seq``): under
    the lock, a large transaction (an order of many licenses) spends one SHA-256 per
    event and the writes, not the JSON encoding of every event."""
    now = utcnow()
    at = now.isoformat(timespec="microseconds")
    cut = {
        chain: [_cut_around_head(noted, at) for noted in events] for chain, events in chains.items()
    }
    for chain, events in chains.items():
        seq, prev_hash = _lock_head(connection, chain)
        rows = []
        for noted, (before, between, after) in zip(events, cut[chain], strict=True):
            seq += 1
            canonical = f"{before}{prev_hash}{between}{seq}{after}"
            digest = hashlib.sha256(canonical.encode()).hexdigest()
            rows.append(
                {
                    **noted,
                    "seq": seq,
                    "at": now,
                    "id": new_id(),
                    "prev_hash": prev_hash,
                    "hash": digest,
                }
            )
            prev_hash = digest
        _write_events(connection, chain, rows)


def _cut_around_head(noted: dict[str, Any], at: str) -> tuple[str, str, str]:
    """The canonical JSON of ``noted`` at ``at`` in three pieces: joined with the
    predecessor's hash and the event's ``seq`` between them, it is what
    ``licentia.domain.audit.event_hash`` hashes."""
    first, second, third, fourth = _postgres.canonical_pieces(noted)
    return first + at + second, third, fourth


def _write_events(connection: Connection, chain: str, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` and move the chain's head to the last of them: on PostgreSQL in
    one statement (``_postgres.write_hashed_events``), so the head is locked for one
    round trip fewer."""
    if connection.dialect.name == "postgresql":
        _postgres.write_hashed_events(connection, chain, rows)
        return
    last = rows[-1]
    connection.execute(_INSERT_EVENTS, rows)
    connection.execute(
        _MOVE_HEAD, {"head_chain": chain, "head_seq": last["seq"], "head_hash": last["hash"]}
    )


_MOVE_HEAD = (
    update(AuditHead)
    .where(AuditHead.chain == bindparam("head_chain"))
    .values(seq=bindparam("head_seq"), hash=bindparam("head_hash"))
)
# With RETURNING, SQLAlchemy sends a list of rows as one multi-row INSERT (its
# "insertmanyvalues"), compiled once.
_INSERT_EVENTS = insert(AuditEvent).returning(AuditEvent.seq)


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _lock_head(connection: Connection, chain: str) -> tuple[int, str]:
    """The chain's (seq, hash), its head row locked until the transaction ends."""
    head = _select_head(connection, chain)
    if head is not None:
        return head
    # The chain's first event: create its head; a concurrent creator's row wins.
    upsert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        upsert(AuditHead).values(chain=chain, seq=0, hash=GENESIS).on_conflict_do_nothing()
    )
    head = _select_head(connection, chain)
    assert head is not None
    return head


def _select_head(connection: Connection, chain: str) -> tuple[int, str] | None:
    row = connection.execute(_LOCK_HEAD, {"head_chain": chain}).one_or_none()
    return None if row is None else (row.seq, row.hash)


_LOCK_HEAD = (
    select(AuditHead.seq, AuditHead.hash)
    .where(AuditHead.chain == bindparam("head_chain"))
    .with_for_update()
)


def _hashable(fields: dict[str, Any]) -> dict[str, Any]:
    at: datetime = fields["at"]
    return {**fields, "at": at.isoformat(timespec="microseconds")}


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    actor_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def query_events(chain: str, filters: AuditFilter) -> Select[AuditEvent]:
    """A query of one chain's events, oldest first, narrowed by ``filters``."""
    query = select(AuditEvent).where(AuditEvent.chain == chain)
    for column, value in (
        (AuditEvent.action, filters.action),
        (AuditEvent.object_type, filters.object_type),
        (AuditEvent.object_id, filters.object_id),
        (AuditEvent.actor_id, filters.actor_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.since is not None:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEvent.at < filters.until)
    return query


def verify_chains(session: Session, chain: str | None = None) -> list[ChainBreak]:
    """Check every chain (or one); returns the first break of each broken chain."""
    heads = session.scalars(
        select(AuditHead).where(AuditHead.chain == chain) if chain else select(AuditHead)
    ).all()
    breaks = []
    for head in heads:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.chain == head.chain).order_by(AuditEvent.seq)
        )
        found = find_break(head.chain, (_as_fields(e) for e in events), (head.seq, head.hash))
        if found is not None:
            breaks.append(found)
    return breaks


@dataclass(frozen=True)
class ChainReport:
    """What verifying one chain found: how many events were checked, up to which
    ``seq`` the head says the chain reaches, and the first break (None if intact)."""

    chain: str
    events: int
    head_seq: int
    broken: ChainBreak | None


def verify_chain(session: Session, chain: str) -> ChainReport:
    """Check every link of ``chain`` against its head."""
    head = session.get(AuditHead, chain)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain == chain).order_by(AuditEvent.seq)
    )
    checked = [0]

    def counted() -> Iterator[dict[str, Any]]:
        for row in events:
            checked[0] += 1
            yield _as_fields(row)

    tip = (head.seq, head.hash) if head is not None else None
    broken = find_break(chain, counted(), tip)
    return ChainReport(chain, checked[0], head.seq if head is not None else 0, broken)


def _as_fields(event: AuditEvent) -> dict[str, Any]:
    fields = {name: getattr(event, name) for name in HASHED_FIELDS}
    fields.update(seq=event.seq, prev_hash=event.prev_hash, hash=event.hash)
    return _hashable(fields)
