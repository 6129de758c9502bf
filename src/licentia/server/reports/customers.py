"""Everything of one customer on one page: their tickets, licenses, cloud containers
and the devices their licenses are activated on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.devices.models import Device
from licentia.server.licenses.models import License
from licentia.server.licenses.services import state_of
from licentia.server.orders.models import Customer, Order, Ticket
from licentia.server.orders.services import get_customer

SHOWN = 50  # of each kind; the lists link to the full, paginated ones


@dataclass(frozen=True)
class TicketRow:
    id: str
    created_at: datetime
    licenses: int
    orders: list[str]  # external order ids


@dataclass(frozen=True)
class LicenseRow:
    id: str
    product_code: str
    delivery: str
    state: str
    valid_until: datetime | None
    device_id: str | None
    container_id: str | None


@dataclass(frozen=True)
class ContainerRow:
    id: str
    name: str
    devices: int
    created_at: datetime


@dataclass(frozen=True)
class DeviceRow:
    id: str
    key_id: str
    status: str
    licenses: int
    last_seen_at: datetime | None


@dataclass(frozen=True)
class CustomerOverview:
    customer: Customer
    license_count: int
    tickets: list[TicketRow]
    licenses: list[LicenseRow]
    containers: list[ContainerRow]
    devices: list[DeviceRow]


def customer_overview(
    session: Session, actor: Actor, customer_id: str, now: datetime, *, shown: int = SHOWN
) -> CustomerOverview:
    """Raises NotFoundError unless the customer is the actor's vendor's."""
    customer = get_customer(session, actor, customer_id)
    statements = _statements(shown)
    ids = {"vendor_id": customer.vendor_id, "customer_id": customer.id}
    return CustomerOverview(
        customer=customer,
        license_count=int(session.scalar(statements.license_count, ids) or 0),
        tickets=_tickets(session, statements, ids),
        licenses=_licenses(session, statements, ids, now),
        containers=_containers(session, statements, ids),
        devices=_devices(session, statements, ids),
    )


def _tickets(session: Session, statements: _Statements, ids: dict[str, str]) -> list[TicketRow]:
    rows = session.execute(statements.tickets, ids).all()
    external: dict[str, list[str]] = {}
    tickets = [ticket_id for ticket_id, _, _ in rows]
    for ticket_id, external_id in session.execute(statements.orders, {"ids": tickets}):
        external.setdefault(ticket_id, []).append(external_id)
    return [
        TicketRow(ticket_id, created_at, int(licenses), external.get(ticket_id, []))
        for ticket_id, created_at, licenses in rows
    ]


def _licenses(
    session: Session, statements: _Statements, ids: dict[str, str], now: datetime
) -> list[LicenseRow]:
    return [
        LicenseRow(
            row.id,
            row.product_code,
            row.delivery,
            state_of(row, now).value,
            row.valid_until,
            row.device_id,
            row.container_id,
        )
        for row in session.execute(statements.licenses, ids)
    ]


def _containers(
    session: Session, statements: _Statements, ids: dict[str, str]
) -> list[ContainerRow]:
    rows = session.execute(statements.containers, ids)
    return [ContainerRow(id_, name, int(count), created) for id_, name, count, created in rows]


def _devices(session: Session, statements: _Statements, ids: dict[str, str]) -> list[DeviceRow]:
    rows = session.execute(statements.devices, ids)
    return [DeviceRow(id_, key, status, int(n), seen) for id_, key, status, n, seen in rows]


@dataclass(frozen=True)
class _Statements:
    """The overview's statements, with the customer (``vendor_id``, ``customer_id``)
    and the tickets' ``ids`` as bound values."""

    license_count: Select[int]
    tickets: Select[str, datetime, int]
    orders: Select[str, str]
    licenses: Select[str, str, str, str, datetime | None, str | None, str | None]
    containers: Select[str, str, int, datetime]
    devices: Select[str, str, str, int, datetime | None]


@lru_cache(maxsize=4)
def _statements(shown: int) -> _Statements:
    """Built once per page size, with bound values: building them and keying
    SQLAlchemy's cache on them cost about as much as running them, on every visit."""
    vendor_id = bindparam("vendor_id", type_=Customer.vendor_id.type)
    customer_id = bindparam("customer_id", type_=Customer.id.type)
    ticket_licenses = (  # in the tickets' query: one round trip less than a grouped count
        select(func.count())
        .where(License.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )
    registered = (
        select(func.count())
        .where(CloudDevice.container_id == CloudContainer.id, CloudDevice.deregistered_at.is_(None))
        .scalar_subquery()
    )
    # A customer's devices: the customer's licenses counted per device first (on their
    # customer index), so that only those devices are read.
    held = (
        select(License.device_id, func.count().label("licenses"))
        .where(License.customer_id == customer_id, License.device_id.is_not(None))
        .group_by(License.device_id)
        .subquery()
    )
    return _Statements(
        license_count=select(func.count()).where(License.customer_id == customer_id),
        tickets=select(Ticket.id, Ticket.created_at, ticket_licenses)
        .where(Ticket.vendor_id == vendor_id, Ticket.customer_id == customer_id)
        .order_by(Ticket.id.desc())
        .limit(shown),
        orders=select(Order.ticket_id, Order.external_order_id)
        .where(Order.ticket_id.in_(bindparam("ids", expanding=True)))
        .order_by(Order.id),
        # the columns the rows show, not whole licenses (their options and features are
        # JSON documents to decode, for nothing)
        licenses=select(
            License.id,
            License.product_code,
            License.delivery,
            License.state,
            License.valid_until,
            License.device_id,
            License.container_id,
        )
        .where(License.vendor_id == vendor_id, License.customer_id == customer_id)
        .order_by(License.id.desc())
        .limit(shown),
        containers=select(
            CloudContainer.id, CloudContainer.name, registered, CloudContainer.created_at
        )
        .where(CloudContainer.vendor_id == vendor_id, CloudContainer.customer_id == customer_id)
        .order_by(CloudContainer.id)
        .limit(shown),
        devices=select(
            Device.id, Device.key_id, Device.status, held.c.licenses, Device.last_seen_at
        )
        .join(held, held.c.device_id == Device.id)
        .where(Device.vendor_id == vendor_id)
        .order_by(Device.id)
        .limit(shown),
    )
