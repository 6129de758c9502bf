"""What notifications remember: each reminder sent (so that it is sent once per license
and end date), and who asked for no more reminders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column


class LicenseNotice(Base):
    """``license.expiring`` or ``license.expired`` of one license for one end of
    validity: its event and its mail were made. An extension moves the end, which
    makes a new period and so a new reminder."""

    __tablename__ = "license_notices"

    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    valid_until: Mapped[datetime] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = created_column()


class MailUnsubscribe(Base):
    """An address that asked a vendor for no more mails of ``topic`` ("reminders")."""

    __tablename__ = "mail_unsubscribes"

    vendor_id: Mapped[str] = mapped_column(ForeignKey("vendors.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    topic: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = created_column()
