"""Vendors, vendor users, sessions and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class Vendor(Base):
    __tablename__ = "vendors"

    id: Mapped[str] = id_column()
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_column()


class VendorBranding(Base):
    """How the vendor's customers see its portal and its mail: name, logo, colours,
    support contact. A vendor without a row is shown with its name and our colours."""

    __tablename__ = "vendor_brandings"

    vendor_id: Mapped[str] = mapped_column(ForeignKey("vendors.id"), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    primary_colour: Mapped[str] = mapped_column(String(7))
    accent_colour: Mapped[str] = mapped_column(String(7))
    support_email: Mapped[str | None] = mapped_column(String(320))
    support_url: Mapped[str | None] = mapped_column(String(500))
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_type: Mapped[str | None] = mapped_column(String(40))
    updated_at: Mapped[datetime] = created_column()


class VendorUser(Base):
    __tablename__ = "vendor_users"
    __table_args__ = (UniqueConstraint("vendor_id", "email"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None: invited, not set
    role: Mapped[str] = mapped_column(String(20))
    # The e-mailed link that sets the password: only its hash, until it is used.
    link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    link_expires_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()


class UserSession(Base):
    """A bearer token a user got by logging in; only its hash is kept."""

    __tablename__ = "user_sessions"

    id: Mapped[str] = id_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("vendor_users.id"), index=True)
    vendor_id: Mapped[str] = vendor_column()
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = created_column()


class ApiKey(Base):
    """An API key: ``lic_<prefix>_<secret>``; the prefix finds it, the hash proves it."""

    __tablename__ = "api_keys"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime] = created_column()
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
