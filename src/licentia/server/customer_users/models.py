"""Customer users and their portal sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class CustomerUser(Base):
    """A person of a customer: the customer admin or a colleague. Without a password
    until they follow the link they were mailed (an invitation or a reset); only the
    link's hash is kept."""

    __tablename__ = "customer_users"
    __table_args__ = (UniqueConstraint("vendor_id", "email"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()


class CustomerSession(Base):
    """A customer user's portal session; only the token's hash is kept."""

    __tablename__ = "customer_sessions"

    id: Mapped[str] = id_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    customer_user_id: Mapped[str] = mapped_column(ForeignKey("customer_users.id"), index=True)
    vendor_id: Mapped[str] = vendor_column()
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_column()


class LicenseAssignment(Base):
    """A license named to one person of its customer: for a seat pool, one of its
    seats; for any other license, the license itself (docs/portal.md, Users)."""

    __tablename__ = "license_assignments"
    __table_args__ = (UniqueConstraint("license_id", "customer_user_id"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"), index=True)
    customer_user_id: Mapped[str] = mapped_column(ForeignKey("customer_users.id"), index=True)
    assigned_at: Mapped[datetime] = created_column()
