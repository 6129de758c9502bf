"""Appending to and reading the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.audit import GENESIS, HASHED_FIELDS, ChainBreak, event_hash, find_break
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
) -> AuditEvent:
    """Append one event to the actor's vendor chain (or ``chain``).

    Locks the chain's head row until the caller's transaction ends, so concurrent
    writers append one after the other and the chain stays linear.
    """
    chain = chain or actor.chain
    head = _lock_head(session, chain)
    fields: dict[str, Any] = {
        "chain": chain,
        "seq": head.seq + 1,
        "at": utcnow(),
        "actor_type": actor.kind,
        "actor_id": actor.id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
        "source_ip": actor.source_ip,
    }
    digest = event_hash(_hashable(fields), head.hash)
    event = AuditEvent(**fields, prev_hash=head.hash, hash=digest)
    session.add(event)
    head.seq, head.hash = fields["seq"], digest
    session.flush()
    return event


def _lock_head(session: Session, chain: str) -> AuditHead:
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(AuditHead).values(chain=chain, seq=0, hash=GENESIS).on_conflict_do_nothing()
    )
    return session.scalars(
        select(AuditHead).where(AuditHead.chain == chain).with_for_update()
    ).one()


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


def _as_fields(event: AuditEvent) -> dict[str, Any]:
    fields = {name: getattr(event, name) for name in HASHED_FIELDS}
    fields.update(seq=event.seq, prev_hash=event.prev_hash, hash=event.hash)
    return _hashable(fields)
