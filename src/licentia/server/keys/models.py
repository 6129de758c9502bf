"""Vendor signing keys; private halves encrypted under the master key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class SigningKey(Base):
    __tablename__ = "signing_keys"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    private_key_encrypted: Mapped[bytes] = mapped_column(LargeBinary(256))
    status: Mapped[str] = mapped_column(String(16))  # current | previous | retired
    created_at: Mapped[datetime] = created_column()
    retired_at: Mapped[datetime | None]
