"""Failed logins: counted per source address to throttle guessing, and per account to
lock it with a growing backoff."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column


class LoginFailure(Base):
    """One failed login from one address, under the key ``ip:<address>``, kept as a hash
    (an address is personal data and need not be readable)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_key_at", "key_hash", "at"),)

    id: Mapped[str] = id_column()
    key_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = created_column()


class LoginLock(Base):
    """An account's failed logins since its last success (or unlock), and the time until
    which it is locked. The account is its key's hash (``account:<realm>:<vendor>:
    <e-mail>``): an e-mail nobody has is locked alike, so a lock reveals no account."""

    __tablename__ = "login_locks"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime]
    locked_until: Mapped[datetime | None]
