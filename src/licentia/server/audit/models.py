"""Audit events, chained per vendor; ``audit_heads`` holds each chain's tip."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        UniqueConstraint("chain", "seq"),
        # one kind of event of one vendor in a period (the dashboard's activations)
        Index("ix_audit_events_chain_action_at", "chain", "action", "at"),
    )

    id: Mapped[str] = id_column()
    chain: Mapped[str] = mapped_column(String(36), index=True)  # vendor id, or "operator"
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = created_column()
    actor_type: Mapped[str] = mapped_column(String(16))  # an ActorKind
    actor_id: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64), index=True)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    source_ip: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The tip of one chain; locked while appending so the chain stays linear."""

    __tablename__ = "audit_heads"

    chain: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
