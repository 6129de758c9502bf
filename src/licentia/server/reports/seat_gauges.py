"""Seats per product across every vendor, as the operator's metrics show them
(``licentia_seats`` and ``licentia_seats_in_use``, docs/operations.md#metrics).

One grouped query over the seat slots: a pool has a slot per seat, and a slot is in
use while its lease has not expired (the same rule as every checkout's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licentia.server.licenses.models import License
from licentia.server.seats.models import SeatSlot
from licentia.server.tenancy.models import Vendor


@dataclass(frozen=True)
class ProductSeats:
    vendor: str  # the vendor's slug
    product: str  # the product's code
    seats: int
    in_use: int


def seats_by_product(session: Session, now: datetime) -> list[ProductSeats]:
    """Every product that has seat pools: its seats and those in use at ``now``."""
    in_use = func.count(SeatSlot.id).filter(SeatSlot.expires_at > now)
    rows = session.execute(
        select(Vendor.slug, License.product_code, func.count(SeatSlot.id), in_use)
        .join(License, License.id == SeatSlot.license_id)
        .join(Vendor, Vendor.id == SeatSlot.vendor_id)
        .group_by(Vendor.slug, License.product_code)
        .order_by(Vendor.slug, License.product_code)
    )
    return [ProductSeats(slug, product, seats, used) for slug, product, seats, used in rows]
