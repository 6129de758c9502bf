"""Seat slots (one row per seat) and the history of what happened to them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class SeatSlot(Base):
    """One of a pool's N seats. A slot is taken iff ``expires_at`` lies in the future,
    so an expired lease never counts, whether or not a sweep has run. ``fence``
    increases with every new holder, so a stale holder cannot extend a reassigned seat.
    ``(license_id, holder_key)`` is unique: one holder never sits in two slots."""

    __tablename__ = "seat_slots"
    __table_args__ = (
        UniqueConstraint("license_id", "slot"),
        UniqueConstraint("license_id", "holder_key"),
        # counting a pool's seats in use (every release and denial) without a scan
        Index("ix_seat_slots_license_expires", "license_id", "expires_at"),
    )

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    holder_key: Mapped[str | None] = mapped_column(String(300))
    user_name: Mapped[str | None] = mapped_column(String(200))
    device_name: Mapped[str | None] = mapped_column(String(200))
    process_id: Mapped[str | None] = mapped_column(String(64))
    lease_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    fence: Mapped[int] = mapped_column(Integer, default=0)
    acquired_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    borrowed: Mapped[bool] = mapped_column(Boolean, default=False)
    released_at: Mapped[datetime | None]


class SeatEvent(Base):
    """Checkouts, releases, expiries, borrows and denials: the numbers vendors want."""

    __tablename__ = "seat_events"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    lease_id: Mapped[str | None] = mapped_column(String(36))
    holder_key: Mapped[str | None] = mapped_column(String(300))
    in_use: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = created_column()


class SeatWaiter(Base):
    """A checkout waiting for a seat (long poll). Waiters are served first come, first
    served; one that stops polling lapses when ``expires_at`` passes."""

    __tablename__ = "seat_waiters"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    queue: Mapped[str] = mapped_column(String(300), index=True)
    enqueued_at: Mapped[datetime] = created_column()
    expires_at: Mapped[datetime]
