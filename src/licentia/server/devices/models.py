"""Devices (device containers), the updates issued to them, flags and returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class Device(Base):
    """One machine, known by its Ed25519 key (``key_id`` is the key's JWK thumbprint)."""

    __tablename__ = "devices"
    __table_args__ = (
        UniqueConstraint("vendor_id", "key_id"),
        # the dashboard's active devices, counted from the index alone
        Index("ix_devices_vendor_activity", "vendor_id", "status", "last_seen_at", "created_at"),
    )

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    key_id: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    encryption_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    fingerprint: Mapped[dict[str, Any]]
    vm: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|blacklisted
    seq: Mapped[int] = mapped_column(Integer, default=0)
    confirmed_seq: Mapped[int] = mapped_column(Integer, default=0)
    lease_renewed_at: Mapped[datetime | None]
    last_seen_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_column()


class DeviceUpdate(Base):
    """What the server issued to a device at one ``seq``, and whether it was confirmed."""

    __tablename__ = "device_updates"
    __table_args__ = (UniqueConstraint("device_id", "seq"),)

    id: Mapped[str] = id_column()
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(64))
    license_ids: Mapped[list[str]]
    issued_at: Mapped[datetime] = created_column()
    confirmed_at: Mapped[datetime | None]


class DeviceFlag(Base):
    """A suspicion the vendor should look at: clone, replay or manipulation."""

    __tablename__ = "device_flags"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = created_column()
    cleared_at: Mapped[datetime | None]


class LicenseReturn(Base):
    """One return of a license from a device: counted against the transfer limit."""

    __tablename__ = "license_returns"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    license_id: Mapped[str] = mapped_column(ForeignKey("licenses.id"), index=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"))
    proof_id: Mapped[str] = mapped_column(String(64), unique=True)
    returned_at: Mapped[datetime] = created_column()
