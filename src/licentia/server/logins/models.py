"""Failed logins, counted per account and per address to throttle guessing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column


class LoginFailure(Base):
    """One failed login under one key: ``account:<vendor>:<email>`` or ``ip:<address>``,
    kept as a hash (an address or e-mail is personal data and need not be readable)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key_hash", "at"),)

    id: Mapped[str] = id_column()
    key_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = created_column()
