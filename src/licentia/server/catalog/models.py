"""Products, features and license templates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("vendor_id", "code"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_column()
    features: Mapped[list[Feature]] = relationship(
        order_by="Feature.code", cascade="all, delete-orphan", lazy="selectin"
    )


class Feature(Base):
    __tablename__ = "features"
    __table_args__ = (UniqueConstraint("product_id", "code"),)

    id: Mapped[str] = id_column()
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))


class Template(Base):
    """A license template; ``options`` holds validated ``TemplateOptions`` as JSON,
    except the secret custom data, which lives encrypted in ``secret_encrypted``."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("vendor_id", "sku"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    product_id: Mapped[str] = mapped_column(ForeignKey("products.id"), index=True)
    features: Mapped[list[str]]
    options: Mapped[dict[str, Any]]
    secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = created_column()
    updated_at: Mapped[datetime] = created_column()
    product: Mapped[Product] = relationship(lazy="joined")
