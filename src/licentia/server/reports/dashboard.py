"""The vendor's dashboard: activations per day, devices in use, seats in use and
denials, counters running low and the customers holding the most licenses.

A read model over several contexts' tables, for one vendor: every figure is one
grouped query, but for the seats in use per day, replayed from the seat events
(``reports.seat_peaks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Float, Select, bindparam, cast, func, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.server.audit.models import AuditEvent
from licentia.server.cloud.models import CloudDevice
from licentia.server.counters.models import UnitCounter
from licentia.server.counters.services import LOW_BALANCE_SHARE
from licentia.server.devices.models import Device
from licentia.server.licenses.models import CustomerLicenseCount, License
from licentia.server.orders.models import Customer
from licentia.server.reports.days import DayCount, as_date, day_of, every_day, period
from licentia.server.reports.seat_peaks import daily_peaks
from licentia.server.seats.models import SeatEvent, SeatSlot

DAYS = 30
TOP = 10


@dataclass(frozen=True)
class LowCounter:
    license_id: str
    product_code: str
    customer_id: str | None
    customer_name: str | None
    balance: int
    units: int


@dataclass(frozen=True)
class TopCustomer:
    customer_id: str
    name: str
    licenses: int
    activated: int


@dataclass(frozen=True)
class Dashboard:
    since: date
    activations: list[DayCount]
    active_devices: int
    active_cloud_devices: int
    seats_in_use: int
    peak_seats: list[DayCount]
    denials: list[DayCount]
    low_counters: list[LowCounter]
    top_customers: list[TopCustomer]

    @property
    def total_activations(self) -> int:
        return sum(day.count for day in self.activations)

    @property
    def total_denials(self) -> int:
        return sum(day.count for day in self.denials)


def dashboard(session: Session, actor: Actor, now: datetime, *, days: int = DAYS) -> Dashboard:
    """The vendor's figures over the ``days`` days up to ``now`` (UTC days, today last)."""
    assert actor.vendor_id is not None, "a dashboard belongs to a vendor"
    vendor_id = actor.vendor_id
    first, since = period(now, days)
    return Dashboard(
        since=first,
        activations=_activations(session, vendor_id, first, days),
        active_devices=_active_devices(session, vendor_id, since),
        active_cloud_devices=_active_cloud_devices(session, vendor_id, since),
        seats_in_use=_seats_in_use(session, vendor_id, now),
        peak_seats=every_day(first, days, _peak_seats(session, vendor_id, first, since, days)),
        denials=every_day(first, days, _denials(session, vendor_id, since)),
        low_counters=low_counters(session, vendor_id),
        top_customers=top_customers(session, vendor_id),
    )


def _activations(session: Session, vendor_id: str, first: date, days: int) -> list[DayCount]:
    """Activations per UTC day, from the audit log: a license activated twice (after a
    return) counts twice, which the licenses' own ``activated_at`` could not tell."""
    starts = [
        datetime.combine(first + timedelta(days=n), datetime.min.time(), tzinfo=UTC)
        for n in range(days + 1)
    ]
    values = {f"start_{n}": start for n, start in enumerate(starts)}
    row = session.execute(_day_counts(days), {"chain": vendor_id, **values}).one()
    return [DayCount(start.date(), int(count)) for start, count in zip(starts, row, strict=False)]


@lru_cache(maxsize=4)
def _day_counts(days: int) -> Select[Any]:
    """One count per day over its range of the (chain, action, at) index: counting
    index entries, where grouping by a day computed from each event's time read them
    all through a function and a temporary table.

    Built once with bound values: building the statement of ``days`` subqueries and
    keying SQLAlchemy's cache on it cost more than running it, on every dashboard."""
    chain = bindparam("chain", type_=AuditEvent.chain.type)
    at = AuditEvent.at.type
    return select(
        *(
            select(func.count())
            .where(
                AuditEvent.chain == chain,
                AuditEvent.action == "license.activated",
                AuditEvent.at >= bindparam(f"start_{n}", type_=at),
                AuditEvent.at < bindparam(f"start_{n + 1}", type_=at),
            )
            .scalar_subquery()
            for n in range(days)
        )
    )


def _active_devices(session: Session, vendor_id: str, since: datetime) -> int:
    """Device containers not blacklisted that were registered or called since ``since``.

    A device's calls all come after its registration, so that is: called since, or
    never called and registered since; two ranges of the (vendor, status, last seen,
    registered) index, counted without reading the other devices."""
    active = (Device.vendor_id == vendor_id, Device.status == "active")
    called = select(func.count()).where(*active, Device.last_seen_at >= since)
    registered = select(func.count()).where(
        *active, Device.last_seen_at.is_(None), Device.created_at >= since
    )
    return int(session.scalar(select(called.scalar_subquery() + registered.scalar_subquery())) or 0)


def _active_cloud_devices(session: Session, vendor_id: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                CloudDevice.vendor_id == vendor_id,
                CloudDevice.deregistered_at.is_(None),
                (CloudDevice.last_seen_at >= since) | (CloudDevice.created_at >= since),
            )
        )
        or 0
    )


def _seats_in_use(session: Session, vendor_id: str, now: datetime) -> int:
    """Seats whose lease has not run out (a seat is taken iff it expires later)."""
    return int(
        session.scalar(
            select(func.count()).where(SeatSlot.vendor_id == vendor_id, SeatSlot.expires_at > now)
        )
        or 0
    )


def _peak_seats(
    session: Session, vendor_id: str, first: date, since: datetime, days: int
) -> dict[date, int]:
    """Per day, the sum over the vendor's seat pools of each pool's most seats in use
    that day, replayed from the seat events as the portal's charts do (a checkout's
    event does not count the seats in use: their highest ``in_use`` is not the peak)."""
    return daily_peaks(session, SeatEvent.vendor_id == vendor_id, first, since, days)


def _denials(session: Session, vendor_id: str, since: datetime) -> dict[date, int]:
    day = day_of(session, SeatEvent.at)
    rows = session.execute(
        select(day, func.count())
        .where(SeatEvent.vendor_id == vendor_id, SeatEvent.kind == "deny", SeatEvent.at >= since)
        .group_by(day)
    )
    return {as_date(value): count for value, count in rows}


def low_counters(session: Session, vendor_id: str, *, limit: int = TOP) -> list[LowCounter]:
    """Unit counters whose balance fell below the low-balance mark (the share of the
    initial units at which consumption records ``counter.low_balance``), lowest
    share first."""
    units = License.options["units"].as_integer()
    share = cast(UnitCounter.balance, Float) / cast(units, Float)
    rows = session.execute(
        select(
            UnitCounter.license_id,
            License.product_code,
            License.customer_id,
            Customer.name,
            UnitCounter.balance,
            units,
        )
        .join(License, License.id == UnitCounter.license_id)
        .outerjoin(Customer, Customer.id == License.customer_id)
        .where(UnitCounter.vendor_id == vendor_id, units > 0, share < LOW_BALANCE_SHARE)
        .order_by(share, UnitCounter.license_id)
        .limit(limit)
    )
    return [LowCounter(*row) for row in rows]


def top_customers(session: Session, vendor_id: str, *, limit: int = TOP) -> list[TopCustomer]:
    """The customers holding the most licenses, with how many of them are activated.

    Ranked on the index of the kept counts (``CustomerLicenseCount``), then the
    activated licenses counted for those few customers only, on the licenses'
    (customer, state) index: the vendor's other licenses are never read."""
    counts = CustomerLicenseCount
    top = session.execute(
        select(counts.customer_id, Customer.name, counts.licenses)
        .join(Customer, Customer.id == counts.customer_id)
        .where(counts.vendor_id == vendor_id, counts.licenses > 0)
        .order_by(counts.licenses.desc(), counts.customer_id.desc())
        .limit(limit)
    ).all()
    ids = [customer_id for customer_id, _, _ in top]
    activated: dict[str | None, int] = {
        customer_id: count
        for customer_id, count in session.execute(
            select(License.customer_id, func.count())
            .where(License.customer_id.in_(ids), License.state == "activated")
            .group_by(License.customer_id)
        )
    }
    return [
        TopCustomer(customer_id, name, int(count), activated.get(customer_id, 0))
        for customer_id, name, count in top
    ]
