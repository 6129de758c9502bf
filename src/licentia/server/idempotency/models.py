"""Stored answers of creating requests, by the caller's ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (PrimaryKeyConstraint("vendor_id", "key"),)

    vendor_id: Mapped[str] = mapped_column(String(36))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = created_column()
