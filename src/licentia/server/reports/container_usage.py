"""A cloud container's usage over time, as its customer admin sees it in the License
Portal: the most seats in use and the refused requests per day over all its seat
pools, and the units its counters consumed per day.

The caller has opened the container already (``cloud.admin.portal_admin`` checks that
it is the customer's); these reads only narrow to it. Each is a few grouped queries.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licentia.server.counters.models import LedgerEntry
from licentia.server.licenses.models import License
from licentia.server.reports.days import DayCount, as_date, day_of, every_day, period
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

    The number in use is replayed from each pool's seat events (a checkout, a release,
    a refusal, an expiry) and holds between them, so a seat held for a week counts on
    each of its days, not only on the day it was taken. A lease that ran out counts
    until the sweep records its expiry."""
    first, since = period(now, days)
    pools = list(session.scalars(select(License.id).where(License.container_id == container_id)))
    peaks: dict[date, int] = defaultdict(int)
    for pool in pools:
        for day, peak in _pool_peaks(session, pool, first, since, days).items():
            peaks[day] += peak
    return SeatUsage(
        first,
        every_day(first, days, peaks),
        every_day(first, days, _denials(session, pools, since)),
    )


# What each kind of seat event does to the number of seats in use. A checkout or a
# borrow takes one (its event does not count the others, to keep the checkout one
# statement); a release and a refusal record the number in use after them; the sweep
# records an expiry without counting, so it frees one.
TAKES = ("checkout", "borrow")
COUNTED = ("release", "force_release", "deny")


def _after(level: int, kind: str, in_use: int) -> int:
    if kind in TAKES:
        return level + 1
    if kind in COUNTED:
        return in_use
    return max(level - 1, 0)


def _pool_peaks(
    session: Session, pool: str, first: date, since: datetime, days: int
) -> dict[date, int]:
    """The pool's most seats in use per day: the events replayed from the last one
    before the period that counted the seats in use (none: the pool was empty)."""
    anchor = session.scalar(
        select(func.max(SeatEvent.at)).where(
            SeatEvent.license_id == pool, SeatEvent.at < since, SeatEvent.kind.in_(COUNTED)
        )
    )
    query = select(SeatEvent.at, SeatEvent.kind, SeatEvent.in_use).where(
        SeatEvent.license_id == pool
    )
    if anchor is not None:
        query = query.where(SeatEvent.at >= anchor)
    events = [
        (_utc_day(at), kind, in_use)
        for at, kind, in_use in session.execute(query.order_by(SeatEvent.at, SeatEvent.id))
    ]
    level, index, peaks = 0, 0, {}
    while index < len(events) and events[index][0] < first:
        level, index = _after(level, *events[index][1:]), index + 1
    for offset in range(days):
        day, peak = first + timedelta(days=offset), level  # held since an earlier day
        while index < len(events) and events[index][0] == day:
            level, index = _after(level, *events[index][1:]), index + 1
            peak = max(peak, level)
        peaks[day] = peak
    return peaks


def _utc_day(at: datetime) -> date:
    """SQLite gives stored UTC times back without a zone, PostgreSQL with one."""
    return at.date() if at.tzinfo is None else at.astimezone(UTC).date()


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
