"""Password reset links: only the token's hash is kept, and each is used once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class PasswordReset(Base):
    """One link mailed to a vendor user (``realm`` ``staff``) or a customer user
    (``customer``) who forgot their password. Spent (``used_at``) when the password is
    set, or when a newer link for the same user is mailed."""

    __tablename__ = "password_resets"
    __table_args__ = (Index("ix_password_resets_user", "realm", "user_id"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    realm: Mapped[str] = mapped_column(String(10))
    user_id: Mapped[str] = mapped_column(String(36))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
