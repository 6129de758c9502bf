"""Cloud containers and the devices registered to use them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from licentia.domain.templates import OPTION_DEFAULTS
from licentia.server.db.base import Base, created_column, id_column, vendor_column


class CloudContainer(Base):
    """A customer's container; its credential (``lcc_<prefix>_<secret>``) registers devices."""

    __tablename__ = "cloud_containers"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    credential_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    credential_hash: Mapped[str] = mapped_column(String(64))
    credential_version: Mapped[int] = mapped_column(Integer, default=1)
    max_devices: Mapped[int] = mapped_column(Integer, default=OPTION_DEFAULTS.max_devices)
    created_at: Mapped[datetime] = created_column()


class CloudDevice(Base):
    """A device registered to a container; its token (``lcd_…``) authenticates each call.
    A credential reset bumps the container's version and strands older registrations."""

    __tablename__ = "cloud_devices"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    container_id: Mapped[str] = mapped_column(ForeignKey("cloud_containers.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    credential_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_column()
    last_seen_at: Mapped[datetime | None]
    deregistered_at: Mapped[datetime | None]
