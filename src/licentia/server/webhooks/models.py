"""Webhook endpoints, the outbox of events, and each event's deliveries to each endpoint.

``webhook_events`` is the transactional outbox: its rows are written in the transaction
of the change they describe (``outbox``). ``seq`` orders them; a delivery waits for the
earlier deliveries of the same object to the same endpoint (``delivery``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from licentia.domain.ids import new_id
from licentia.server.db.base import Base, created_column, id_column, vendor_column

# SQLite numbers a table's rows only through an INTEGER primary key.
SEQ = BigInteger().with_variant(Integer(), "sqlite")


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(200), default="")
    event_types: Mapped[list[str]]
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(32))  # "failing", "vendor"
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # under the master key
    # After a rotation the old secret signs too, until previous_secret_until.
    previous_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_secret_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()


class WebhookEvent(Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("ix_webhook_events_dispatched_seq", "dispatched", "seq"),
        Index(
            "uq_webhook_events_once_key",
            "once_key",
            unique=True,
            postgresql_where=text("once_key IS NOT NULL"),
            sqlite_where=text("once_key IS NOT NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)  # webhook-id
    vendor_id: Mapped[str] = vendor_column()
    type: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = created_column()
    dispatched: Mapped[bool] = mapped_column(default=False)  # deliveries made
    # An event sent at most once per key (``outbox.emit_once``): seat.denied's is its
    # pool and minute.
    once_key: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(Base):
    """One event to one endpoint: ``pending`` until ``delivered`` or ``failed``."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_object", "endpoint_id", "object_id", "status"),
    )

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    endpoint_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    event_seq: Mapped[int] = mapped_column(SEQ, ForeignKey("webhook_events.seq"), index=True)
    object_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = created_column()
    claimed_by: Mapped[str | None] = mapped_column(String(36))
    claimed_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()


class WebhookAttempt(Base):
    """One HTTP request of a delivery: the delivery log."""

    __tablename__ = "webhook_attempts"

    id: Mapped[str] = id_column()
    delivery_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = created_column()
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(String(200))
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
