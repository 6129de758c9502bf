"""A cloud container's usage over time, as its customer admin sees it in the License
Portal: the most seats in use and the refused requests per day over all its seat
pools, and the units its counters consumed per day.

The caller has opened the container already (``cloud.admin.portal_admin`` checks that
it is the customer's); these reads only narrow to it. Each is a few grouped queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licentia.server.counters.models import LedgerEntry
from licentia.server.licenses.models import License
from licentia.server.reports.days import DayCount, as_date, day_of, every_day, period
from licentia.server.reports.seat_peaks import daily_peaks
from licentia.server.seats.models import SeatEvent

DAYS = 30


@dataclass(frozen=True)
class SeatUsage:
    """Per UTC day of the period: the most seats in use at once (summed over the
    container's pools) and how many requests for a seat were refused."""

    since: date
    in_use: list[DayCount]
    denials: list[DayCount]

    @property
    def total_denials(self) -> int:
        return sum(day.count for day in self.denials)


def seat_usage(
    session: Session, container_id: str, now: datetime, *, days: int = DAYS
) -> SeatUsage:
    """The container's seat usage over the ``days`` days up to ``now`` (today last).

    The number in use is replayed from each pool's seat events (``reports.seat_peaks``,
    as the vendor's dashboard does), so a seat held for a week counts on each of its
    days, not only on the day it was taken."""
    first, since = period(now, days)
    pools = list(session.scalars(select(License.id).where(License.container_id == container_id)))
    peaks = (
        daily_peaks(session, SeatEvent.license_id.in_(pools), first, since, days) if pools else {}
    )
    return SeatUsage(
        first,
        every_day(first, days, peaks),
        every_day(first, days, _denials(session, pools, since)),
    )


def _denials(session: Session, pools: list[str], since: datetime) -> dict[date, int]:
    if not pools:
        return {}
    day = day_of(session, SeatEvent.at)
    rows = session.execute(
        select(day, func.count())
        .where(SeatEvent.license_id.in_(pools), SeatEvent.kind == "deny", SeatEvent.at >= since)
        .group_by(day)
    )
    return {as_date(value): count for value, count in rows}


def unit_consumption(
    session: Session,
    container_id: str,
    now: datetime,
    *,
    license_id: str | None = None,
    days: int = DAYS,
) -> list[DayCount]:
    """The units consumed per UTC day over the ``days`` days up to ``now``: by every
    counter of the container, or by the one of ``license_id`` (one of its licenses)."""
    first, since = period(now, days)
    day = day_of(session, LedgerEntry.at)
    query = (
        select(day, func.sum(-LedgerEntry.delta))
        .join(License, License.id == LedgerEntry.license_id)
        .where(
            License.container_id == container_id,
            LedgerEntry.kind == "consume",
            LedgerEntry.at >= since,
        )
        .group_by(day)
    )
    if license_id is not None:
        query = query.where(LedgerEntry.license_id == license_id)
    return every_day(
        first, days, {as_date(value): int(total) for value, total in session.execute(query)}
    )
