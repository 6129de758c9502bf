"""Staff members' TOTP secrets (encrypted under the master key) and recovery codes
(keyed hashes only)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class StaffTotp(Base):
    """A vendor user's authenticator. Until ``enabled_at`` the secret is only being
    enrolled (shown, not yet confirmed with a code) and logins do not ask for it."""

    __tablename__ = "staff_totp"

    user_id: Mapped[str] = mapped_column(ForeignKey("vendor_users.id"), primary_key=True)
    vendor_id: Mapped[str] = vendor_column()
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    enabled_at: Mapped[datetime | None]
    # The time step of the last code accepted: a code is never accepted twice.
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = created_column()


class RecoveryCode(Base):
    """One single-use code that stands in for the authenticator (a lost phone)."""

    __tablename__ = "staff_recovery_codes"

    id: Mapped[str] = id_column()
    user_id: Mapped[str] = mapped_column(ForeignKey("vendor_users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()
