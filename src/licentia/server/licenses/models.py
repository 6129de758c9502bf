"""One row per license: the template's options frozen at issue, plus live state."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class License(Base):
    __tablename__ = "licenses"
    __table_args__ = (
        Index("ix_licenses_ticket_delivery", "ticket_id", "delivery", "template_id"),
        Index("ix_licenses_ticket_free", "ticket_id", "template_id", "state", "device_id"),
        # a customer's licenses, and how many of them are in one state (the dashboard)
        Index("ix_licenses_customer_state", "customer_id", "state"),
        # a vendor's licenses in one state, in id order: a page of the filtered list
        # is read from the index in order (SQLite cannot tell a rare state from a
        # common one, and otherwise walks every license in id order looking for it)
        Index("ix_licenses_state_vendor_id", "state", "vendor_id", "id"),
        # automatic renewals: the subscriptions due soonest
        Index("ix_licenses_renews_at", "renews_at"),
        # the licenses that end within a window: the expiry reminders' scan
        Index("ix_licenses_valid_until", "valid_until"),
    )

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"), index=True)
    order_line_id: Mapped[str | None] = mapped_column(ForeignKey("order_lines.id"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"))
    product_code: Mapped[str] = mapped_column(String(64))
    # Copied from options so that activation and redemption can filter in SQL.
    delivery: Mapped[str] = mapped_column(String(16), default="device", server_default="device")
    features: Mapped[list[str]]
    options: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(16))
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
    # A subscription's paid period (``domain/subscriptions.py``; None: no subscription),
    # when it was cancelled (then it is never renewed again), and when an automatic
    # subscription renews next (None: it does not renew by itself).
    paid_until: Mapped[datetime | None]
    subscription_cancelled_at: Mapped[datetime | None]
    renews_at: Mapped[datetime | None]


class CustomerLicenseCount(Base):
    """How many licenses (in any state) each customer holds, added to wherever licenses
    are issued (``licenses.services.count_issued``). The dashboard ranks customers by it
    on its index instead of counting every license of the vendor; licenses are never
    deleted and never change customer, so the count only grows."""

    __tablename__ = "customer_license_counts"
    __table_args__ = (
        Index("ix_customer_license_counts_vendor_licenses", "vendor_id", "licenses", "customer_id"),
    )

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    vendor_id: Mapped[str] = mapped_column(String(36), ForeignKey("vendors.id"))
    licenses: Mapped[int] = mapped_column(Integer)


class ActivationDay(Base):
    """How many times a vendor's licenses were activated (on a device or into a cloud
    container) on one UTC day, added to in the activation's own transaction wherever
    ``license.activated`` is audited (``licenses.services.count_activations``). The
    dashboard's activations per day read 30 of these rows instead of counting the
    audit log's events of 30 days."""

    __tablename__ = "activation_days"

    vendor_id: Mapped[str] = mapped_column(String(36), ForeignKey("vendors.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    activations: Mapped[int] = mapped_column(Integer)
