"""Unit counters and their ledger: the balance can always be recomputed from it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class UnitCounter(Base):
    __tablename__ = "unit_counters"

    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"), primary_key=True)
    vendor_id: Mapped[str] = vendor_column()
    balance: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = created_column()


class LedgerEntry(Base):
    """One change of a balance. ``key`` makes a consumption idempotent per counter."""

    __tablename__ = "unit_ledger"
    __table_args__ = (UniqueConstraint("license_id", "key"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # initial | consume | top_up | reset
    delta: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str] = mapped_column(String(200))
    actor_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = created_column()
