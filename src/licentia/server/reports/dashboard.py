"""The vendor's dashboard: activations per day, devices in use, seats in use and
denials, counters running low and the customers holding the most licenses.

A read model over several contexts' tables, for one vendor: every figure is one
grouped query, but for the seats in use per day, replayed from the seat events
(``reports.seat_peaks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, ScalarSelect, Select, bindparam, cast, func, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.server.cloud.models import CloudDevice
from licentia.server.counters.models import UnitCounter
from licentia.server.counters.services import LOW_BALANCE_SHARE
from licentia.server.devices.models import Device
from licentia.server.licenses.models import ActivationDay, CustomerLicenseCount, License
from licentia.server.orders.models import Customer
from licentia.server.reports.days import DayCount, as_date, day_in, every_day, period
from licentia.server.reports.seat_peaks import peaks_statement, replayed_peaks
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
    in_use = _in_use(session, vendor_id, since, now)
    return Dashboard(
        since=first,
        activations=_activations(session, vendor_id, first, days),
        active_devices=in_use.devices,
        active_cloud_devices=in_use.cloud_devices,
        seats_in_use=in_use.seats,
        peak_seats=every_day(first, days, _peak_seats(session, vendor_id, first, since, days)),
        denials=every_day(first, days, _denials(session, vendor_id, since)),
        low_counters=low_counters(session, vendor_id),
        top_customers=top_customers(session, vendor_id),
    )


def _activations(session: Session, vendor_id: str, first: date, days: int) -> list[DayCount]:
    """Activations per UTC day, as kept with each activation (``ActivationDay``): a
    license activated twice (after a return) counts twice, as in the audit log, which
    the licenses' own ``activated_at`` could not tell."""
    rows = session.execute(
        _DAYS, {"vendor_id": vendor_id, "first": first, "last": first + timedelta(days=days - 1)}
    )
    return every_day(first, days, {as_date(day): count for day, count in rows})


_DAYS = (  # built once: the dashboard asks for it on every visit
    select(ActivationDay.day, ActivationDay.activations).where(
        ActivationDay.vendor_id == bindparam("vendor_id"),
        ActivationDay.day >= bindparam("first", type_=ActivationDay.day.type),
        ActivationDay.day <= bindparam("last", type_=ActivationDay.day.type),
    )
)


@dataclass(frozen=True)
class _InUse:
    devices: int
    cloud_devices: int
    seats: int


def _in_use(session: Session, vendor_id: str, since: datetime, now: datetime) -> _InUse:
    """Active device containers, active cloud devices and seats in use now: three
    counts in one statement (one round trip), built once."""
    row = session.execute(_IN_USE, {"vendor_id": vendor_id, "since": since, "now": now}).one()
    return _InUse(*(int(count or 0) for count in row))


def _count(*where: ColumnElement[bool]) -> ScalarSelect[int]:
    return select(func.count()).where(*where).scalar_subquery()


def _in_use_statement() -> Select[int, int, int]:
    """Device containers not blacklisted that were registered or called since ``since``
    (a device's calls all come after its registration, so that is: called since, or
    never called and registered since; two ranges of the (vendor, status, last seen,
    registered) index, counted without reading the other devices); cloud devices
    registered and seen or registered since; seats whose lease has not run out (a seat
    is taken iff it expires later)."""
    vendor_id = bindparam("vendor_id", type_=Device.vendor_id.type)
    since = bindparam("since", type_=Device.created_at.type)
    now = bindparam("now", type_=SeatSlot.expires_at.type)
    active = (Device.vendor_id == vendor_id, Device.status == "active")
    devices = _count(*active, Device.last_seen_at >= since) + _count(
        *active, Device.last_seen_at.is_(None), Device.created_at >= since
    )
    cloud_devices = _count(
        CloudDevice.vendor_id == vendor_id,
        CloudDevice.deregistered_at.is_(None),
        (CloudDevice.last_seen_at >= since) | (CloudDevice.created_at >= since),
    )
    seats = _count(SeatSlot.vendor_id == vendor_id, SeatSlot.expires_at > now)
    return select(devices, cloud_devices, seats)


_IN_USE = _in_use_statement()


def _peak_seats(
    session: Session, vendor_id: str, first: date, since: datetime, days: int
) -> dict[date, int]:
    """Per day, the sum over the vendor's seat pools of each pool's most seats in use
    that day, replayed from the seat events as the portal's charts do (a checkout's
    event does not count the seats in use: their highest ``in_use`` is not the peak)."""
    rows = session.execute(_PEAK_SEATS, {"vendor_id": vendor_id, "since": since})
    return replayed_peaks(rows, first, days)


def _denials(session: Session, vendor_id: str, since: datetime) -> dict[date, int]:
    statement = _DENIALS[session.get_bind().dialect.name]
    rows = session.execute(statement, {"vendor_id": vendor_id, "since": since})
    return {as_date(value): count for value, count in rows}


def _denials_statement(dialect: str) -> Select[Any, int]:
    day = day_in(dialect, SeatEvent.at)
    return (
        select(day, func.count())
        .where(
            SeatEvent.vendor_id == bindparam("vendor_id", type_=SeatEvent.vendor_id.type),
            SeatEvent.kind == "deny",
            SeatEvent.at >= bindparam("since", type_=SeatEvent.at.type),
        )
        .group_by(day)
    )


_PEAK_SEATS = peaks_statement(
    SeatEvent.vendor_id == bindparam("vendor_id", type_=SeatEvent.vendor_id.type)
)
_DENIALS = {dialect: _denials_statement(dialect) for dialect in ("sqlite", "postgresql")}


def low_counters(session: Session, vendor_id: str) -> list[LowCounter]:
    """Unit counters whose balance fell below the low-balance mark (the share of the
    initial units at which consumption records ``counter.low_balance``), lowest
    share first."""
    return [LowCounter(*row) for row in session.execute(_LOW_COUNTERS, {"vendor_id": vendor_id})]


def _low_counters_statement() -> Select[str, str, str | None, str | None, int, int]:
    units = License.options["units"].as_integer()
    share = cast(UnitCounter.balance, Float) / cast(units, Float)
    return (
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
        .where(
            UnitCounter.vendor_id == bindparam("vendor_id", type_=UnitCounter.vendor_id.type),
            units > 0,
            share < LOW_BALANCE_SHARE,
        )
        .order_by(share, UnitCounter.license_id)
        .limit(TOP)
    )


def top_customers(session: Session, vendor_id: str) -> list[TopCustomer]:
    """The customers holding the most licenses, with how many of them are activated.

    Ranked on the index of the kept counts (``CustomerLicenseCount``), then the
    activated licenses counted for those few customers only, on the licenses'
    (customer, state) index: the vendor's other licenses are never read."""
    top = session.execute(_TOP, {"vendor_id": vendor_id}).all()
    ids = [customer_id for customer_id, _, _ in top]
    activated: dict[str | None, int] = {
        customer_id: count for customer_id, count in session.execute(_ACTIVATED, {"ids": ids})
    }
    return [
        TopCustomer(customer_id, name, int(count), activated.get(customer_id, 0))
        for customer_id, name, count in top
    ]


# Built once, with bound values: building a statement and keying SQLAlchemy's cache on
# it cost about as much as running these, on every visit of the dashboard.
_LOW_COUNTERS = _low_counters_statement()
_TOP = (
    select(CustomerLicenseCount.customer_id, Customer.name, CustomerLicenseCount.licenses)
    .join(Customer, Customer.id == CustomerLicenseCount.customer_id)
    .where(
        CustomerLicenseCount.vendor_id
        == bindparam("vendor_id", type_=CustomerLicenseCount.vendor_id.type),
        CustomerLicenseCount.licenses > 0,
    )
    .order_by(CustomerLicenseCount.licenses.desc(), CustomerLicenseCount.customer_id.desc())
    .limit(TOP)
)
_ACTIVATED = (
    select(License.customer_id, func.count())
    .where(
        License.customer_id.in_(bindparam("ids", expanding=True)),
        License.state == "activated",
    )
    .group_by(License.customer_id)
)
