"""Customers, orders with their lines, and tickets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from licentia.server.db.base import Base, created_column, id_column, vendor_column


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("vendor_id", "external_id"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    external_id: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = created_column()


class Ticket(Base):
    """A ticket; the code is kept as a keyed hash (lookup) and encrypted (re-send)."""

    __tablename__ = "tickets"

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_encrypted: Mapped[bytes] = mapped_column(LargeBinary(256))
    created_at: Mapped[datetime] = created_column()


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("vendor_id", "external_order_id"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    external_order_id: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    # "processing" while a job issues its licenses (a large order), then "completed".
    status: Mapped[str] = mapped_column(String(16), default="completed", server_default="completed")
    created_at: Mapped[datetime] = created_column()
    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.line_id", lazy="selectin", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    """One line: ``quantity`` licenses of template ``sku``; ``line_id`` is the ERP's position."""

    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "line_id"),)

    id: Mapped[str] = id_column()
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    line_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = created_column()


CANCELLATION = ""  # the ``return_id`` under which an order's cancellation is kept


class OrderReturn(Base):
    """A return of some of an order's licenses, or its cancellation (``return_id``
    ""), as the ERP sent it: kept with its answer so that the same return sent again
    is answered as before and changes nothing more."""

    __tablename__ = "order_returns"
    __table_args__ = (UniqueConstraint("order_id", "return_id"),)

    id: Mapped[str] = id_column()
    vendor_id: Mapped[str] = vendor_column()
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))  # leads the unique key
    return_id: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    answer: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = created_column()
