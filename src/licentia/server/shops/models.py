"""A vendor's shops: their settings, the mapping of the shop's price and product ids
to SKUs, the events received (the vendor's log, and what makes an event count once),
and the shop's references (payment, subscription…) of each order they made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class ShopSettings(Base):
    """One shop of a vendor (``provider``: stripe or paddle)."""

    __tablename__ = "shop_settings"
    __table_args__ = (UniqueConstraint("vendor_id", "provider"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    provider: Mapped[str] = mapped_column(String(16))
    signing_secret: Mapped[bytes] = mapped_column(LargeBinary)  # under the master key
    refund_action: Mapped[str] = mapped_column(String(16))  # none, suspend, withdraw
    cancel_action: Mapped[str] = mapped_column(String(16))
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()


class ShopMapping(Base):
    """The shop's price or product id ``provider_ref`` stands for the template ``sku``."""

    __tablename__ = "shop_mappings"
    __table_args__ = (UniqueConstraint("vendor_id", "provider", "provider_ref"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    provider: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()


class ShopEvent(Base):
    """An event a shop sent, once per event id: ``processed`` (with what it did),
    ``failed`` (with why; the shop retries it), or ``processing`` while a request holds it."""

    __tablename__ = "shop_events"
    __table_args__ = (
        UniqueConstraint("vendor_id", "provider", "event_id"),
        Index("ix_shop_events_vendor_status", "vendor_id", "status"),
    )

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = mapped_column(String(36), ForeignKey("vendors.id"))
    provider: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32))  # order_created, renewed…
    order_id: Mapped[str | None] = mapped_column(String(36))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()


class ShopReference(Base):
    """A shop's id of something that belongs to an order (its checkout session, payment,
    subscription, transaction…): how a later refund or cancellation finds the order."""

    __tablename__ = "shop_references"
    __table_args__ = (UniqueConstraint("vendor_id", "provider", "reference"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = mapped_column(String(36), ForeignKey("vendors.id"))
    provider: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str] = mapped_column(String(200))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    created_at: Mapped[datetime] = created_column()
