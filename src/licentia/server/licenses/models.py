"""One row per license: the template's options frozen at issue, plus live state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class License(Base):
    __tablename__ = "licenses"
    __table_args__ = (
        Index("ix_licenses_ticket_delivery", "ticket_id", "delivery", "template_id"),
        Index("ix_licenses_ticket_free", "ticket_id", "template_id", "state", "device_id"),
    )

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), index=True)
    order_line_id: Mapped[str | None] = mapped_column(ForeignKey("order_lines.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    product_code: Mapped[str] = mapped_column(String(64))
    # Copied from options so that activation and redemption can filter in SQL.
    delivery: Mapped[str] = mapped_column(String(16), default="device", server_default="device")
    features: Mapped[list[str]]
    options: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_before_suspend: Mapped[str | None] = mapped_column(String(16))
    issued_at: Mapped[datetime] = created_column()
    valid_until: Mapped[datetime | None]
    maintenance_until: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id"), index=True)
    container_id: Mapped[str | None] = mapped_column(ForeignKey("cloud_containers.id"), index=True)
    replaced_by_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = created_column()
    # The churn limit's period (``activation/churn.py``): activations and returns
    # counted since the period began, its end, and while the count is full, until when.
    churn_count: Mapped[int] = mapped_column(Integer, server_default="0")
    churn_period_ends: Mapped[datetime | None]
    churn_full_until: Mapped[datetime | None]
