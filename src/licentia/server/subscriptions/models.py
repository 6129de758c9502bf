"""One row per renewal of a subscription: the history, and what makes renewals idempotent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class SubscriptionRenewal(Base):
    """A period paid: the license's ``paid_until`` moved from ``paid_from`` to
    ``paid_until``. A period is renewed once (``paid_from`` is unique per license),
    and one external id of one source renews once (its replay finds this row)."""

    __tablename__ = "subscription_renewals"
    __table_args__ = (
        UniqueConstraint("license_id", "paid_from"),
        UniqueConstraint("license_id", "source", "external_id"),
    )

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"))
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(200))
    paid_from: Mapped[datetime]
    paid_until: Mapped[datetime]
    created_at: Mapped[datetime] = created_column()
