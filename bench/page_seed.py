"""A large vendor, written straight into the database: what the page benchmark reads.

100,000 licenses, 20,000 devices and 1,000 customers through the API one by one would
take longer than the benchmark itself, so the rows are inserted in batches with
SQLAlchemy Core, shaped as the use cases leave them (with the counts they keep):
customers with orders, each order with its ticket and one line, the line's licenses
(a fifth of them activated on a device of their own, a few suspended or withdrawn),
and the audit events a vendor of that size has (one ``license.issued`` per license,
one ``license.activated`` per activation, spread over the last 60 days). The audit
chain's hashes are stand-ins: the benchmark never verifies the chain. The tickets'
codes are stand-ins too (never shown by the pages measured): the ticket whose pages
are measured is ordered through the API.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, create_engine, insert, select, text, update
from sqlalchemy.engine import make_url

from licentia.domain.ids import new_id
from licentia.server.audit.models import AuditEvent, AuditHead
from licentia.server.catalog.models import Product, Template
from licentia.server.customer_users.models import CustomerUser
from licentia.server.db.base import Base
from licentia.server.devices.models import Device
from licentia.server.licenses.models import ActivationDay, CustomerLicenseCount, License
from licentia.server.orders.models import Customer, Order, OrderLine, Ticket
from licentia.server.tenancy.models import Vendor
from licentia.server.tenancy.passwords import hash_password


@dataclass(frozen=True)
class Scale:
    licenses: int = 100_000
    devices: int = 20_000
    customers: int = 1_000
    orders_per_customer: int = 5


@dataclass(frozen=True)
class Seeded:
    """The customer with the most licenses and the portal login of its admin."""

    customer_id: str
    customer_email: str
    customer_password: str


BATCH = 5_000
DAYS = 60


def seed_vendor(database_url: str, slug: str, sku: str, scale: Scale = Scale()) -> Seeded:
    """Fill the vendor ``slug`` (which has the template ``sku``) up to ``scale``."""
    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            seeded = _seed(connection, slug, sku, scale)
        if engine.dialect.name == "postgresql":  # what autovacuum does soon after
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
        return seeded
    finally:
        engine.dispose()


def _seed(connection: Connection, slug: str, sku: str, scale: Scale) -> Seeded:
    vendor_id = connection.execute(select(Vendor.id).where(Vendor.slug == slug)).scalar_one()
    template = connection.execute(
        select(Template.id, Template.options, Template.features, Template.product_id).where(
            Template.vendor_id == vendor_id, Template.sku == sku
        )
    ).one()
    product_code = connection.scalar(select(Product.code).where(Product.id == template.product_id))
    now = datetime.now(UTC)
    customers = _customers(vendor_id, scale, now)
    _insert(connection, Customer, customers)
    devices = _devices(vendor_id, scale, now)
    _insert(connection, Device, devices)
    tickets, orders, lines, licenses = _orders(vendor_id, customers, template, sku, scale, now)
    _insert(connection, Ticket, tickets)
    _insert(connection, Order, orders)
    _insert(connection, OrderLine, lines)
    for license_ in licenses:
        license_["product_code"] = product_code
    _activate(licenses, devices, now)
    _insert(connection, License, licenses)
    _insert(connection, CustomerLicenseCount, _counts(vendor_id, licenses))
    _insert(connection, ActivationDay, _activation_days(vendor_id, licenses, now))
    _audit(connection, vendor_id, licenses, now)
    return _portal_login(connection, vendor_id, licenses, now)


def _customers(vendor_id: str, scale: Scale, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "vendor_id": vendor_id,
            "external_id": f"CRM-{n:05d}",
            "name": f"Customer {n:04d} GmbH",
            "email": f"licenses@customer{n:04d}.example",
            "created_at": now - timedelta(days=DAYS, minutes=n),
        }
        for n in range(scale.customers)
    ]


def _devices(vendor_id: str, scale: Scale, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for n in range(scale.devices):
        key = secrets.token_bytes(32)
        rows.append(
            {
                "id": new_id(),
                "vendor_id": vendor_id,
                "key_id": hashlib.sha256(key).hexdigest()[:43],
                "public_key": key,
                "encryption_key": secrets.token_bytes(32),
                "fingerprint": {"factors": {"machine": hashlib.sha256(key).hexdigest()}},
                "vm": False,
                "status": "blacklisted" if n % 500 == 0 else "active",
                "seq": 1,
                "confirmed_seq": 1,
                "lease_renewed_at": now - timedelta(hours=n % 720),
                "last_seen_at": now - timedelta(hours=n % (24 * DAYS)),
                "created_at": now - timedelta(hours=n % (24 * DAYS)),
            }
        )
    return rows


def _ticket_sizes(scale: Scale) -> list[int]:
    """Orders of 1 to 79 licenses (uneven, so that some customers hold far more than
    others), adding up to ``scale.licenses``."""
    count = scale.customers * scale.orders_per_customer
    sizes = [1 + (n * 37) % 79 for n in range(count)]
    total = sum(sizes)
    sizes = [max(1, size * scale.licenses // total) for size in sizes]
    for n in range(scale.licenses - sum(sizes)):  # what the rounding down left out
        sizes[n % count] += 1
    return sizes


def _orders(
    vendor_id: str,
    customers: Sequence[dict[str, Any]],
    template: Any,
    sku: str,
    scale: Scale,
    now: datetime,
) -> tuple[list[dict[str, Any]], ...]:
    tickets: list[dict[str, Any]] = []
    orders: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    licenses: list[dict[str, Any]] = []
    for n, size in enumerate(_ticket_sizes(scale)):
        customer = customers[n % len(customers)]
        at = (
            now - timedelta(days=DAYS) + timedelta(seconds=n * DAYS * 86_400 // len(customers) // 5)
        )
        ticket = {
            "id": new_id(),
            "vendor_id": vendor_id,
            "customer_id": customer["id"],
            "code_hash": secrets.token_hex(32),
            "code_encrypted": secrets.token_bytes(64),
            "created_at": at,
        }
        order = {
            "id": new_id(),
            "vendor_id": vendor_id,
            "external_order_id": f"ERP-{n:06d}",
            "customer_id": customer["id"],
            "ticket_id": ticket["id"],
            "created_at": at,
        }
        line = {
            "id": new_id(),
            "order_id": order["id"],
            "line_id": "1",
            "sku": sku,
            "template_id": template.id,
            "quantity": size,
            "created_at": at,
        }
        tickets.append(ticket)
        orders.append(order)
        lines.append(line)
        licenses += [_license(vendor_id, template, ticket, line, at) for _ in range(size)]
    return tickets, orders, lines, licenses


def _license(
    vendor_id: str, template: Any, ticket: dict[str, Any], line: dict[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "vendor_id": vendor_id,
        "ticket_id": ticket["id"],
        "template_id": template.id,
        "order_line_id": line["id"],
        "customer_id": ticket["customer_id"],
        "delivery": template.options.get("delivery", "device"),
        "features": list(template.features),
        "options": dict(template.options),
        "state": "available",
        "state_before_suspend": None,
        "issued_at": at,
        "valid_until": at + timedelta(days=365),
        "maintenance_until": at + timedelta(days=365),
        "activated_at": None,
        "device_id": None,
        "container_id": None,
        "replaced_by_id": None,
        "version": 1,
        "updated_at": at,
    }


def _activate(
    licenses: list[dict[str, Any]], devices: Sequence[dict[str, Any]], now: datetime
) -> None:
    """Every fifth license is activated on a device of its own (as many as there are
    devices); one in 200 is suspended, one in 300 withdrawn."""
    free = iter(devices)
    for n, license_ in enumerate(licenses):
        if n % 5 == 0 and (device := next(free, None)) is not None:
            license_["state"] = "activated"
            license_["device_id"] = device["id"]
            license_["activated_at"] = max(license_["issued_at"], device["created_at"])
        elif n % 200 == 1:
            license_["state"], license_["state_before_suspend"] = "suspended", "available"
        elif n % 300 == 2:
            license_["state"] = "withdrawn"


def _counts(vendor_id: str, licenses: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``licenses.services.count_issued`` keeps for licenses issued by the API."""
    held = Counter(license_["customer_id"] for license_ in licenses)
    return [
        {"customer_id": customer_id, "vendor_id": vendor_id, "licenses": count}
        for customer_id, count in held.items()
    ]


def _activation_days(
    vendor_id: str, licenses: Sequence[dict[str, Any]], now: datetime
) -> list[dict[str, Any]]:
    """What ``licenses.services.count_activations`` keeps for the activations audited
    below (on the day of their event)."""
    days = Counter(
        min(license_["activated_at"], now).date()
        for license_ in licenses
        if license_["activated_at"] is not None
    )
    return [
        {"vendor_id": vendor_id, "day": day, "activations": count} for day, count in days.items()
    ]


def _audit(
    connection: Connection, vendor_id: str, licenses: Sequence[dict[str, Any]], now: datetime
) -> None:
    head = connection.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.chain == vendor_id)
    ).one()
    events = [("license.issued", license_, license_["issued_at"]) for license_ in licenses] + [
        ("license.activated", license_, license_["activated_at"])
        for license_ in licenses
        if license_["activated_at"] is not None
    ]
    events.sort(key=lambda event: event[2])
    seq, last = head.seq, head.hash
    rows = []
    for action, license_, at in events:
        seq, prev = seq + 1, last
        last = hashlib.sha256(f"{prev}{seq}".encode()).hexdigest()
        rows.append(
            {
                "id": new_id(),
                "chain": vendor_id,
                "seq": seq,
                "at": min(at, now),
                "actor_type": "api_key",
                "actor_id": None,
                "action": action,
                "object_type": "license",
                "object_id": license_["id"],
                "before": None,
                "after": {"state": license_["state"]},
                "source_ip": None,
                "prev_hash": prev,
                "hash": last,
            }
        )
    _insert(connection, AuditEvent, rows)
    connection.execute(
        update(AuditHead).where(AuditHead.chain == vendor_id).values(seq=seq, hash=last)
    )


def _portal_login(
    connection: Connection, vendor_id: str, licenses: Sequence[dict[str, Any]], now: datetime
) -> Seeded:
    held = Counter(license_["customer_id"] for license_ in licenses)
    customer_id = max(held, key=lambda key: (held[key], key))
    email, password = "admin@customer.example", secrets.token_urlsafe(12)
    connection.execute(
        insert(CustomerUser).values(
            id=new_id(),
            vendor_id=vendor_id,
            customer_id=customer_id,
            email=email,
            role="admin",
            password_hash=hash_password(password),
            created_at=now,
        )
    )
    return Seeded(customer_id, email, password)


def _insert(connection: Connection, table: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    for batch in _batches(rows):
        connection.execute(insert(table), batch)


def _batches(rows: Sequence[dict[str, Any]]) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH):
        yield rows[start : start + BATCH]
