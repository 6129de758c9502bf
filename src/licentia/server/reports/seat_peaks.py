"""The most seats in use per day, replayed from the seat events: one rule for the
vendor's dashboard (all its pools) and the customer's portal (a container's pools),
so both show the same figure for the same pool.

The number in use is not the ``in_use`` of the day's events: a checkout's event does
not count the seats in use (that keeps the checkout one statement), and a seat held
for a week has events only on its first and last day. So each pool's events are
replayed, from the last one before the period that counted the seats in use (none:
the pool was empty when its first event came), and the number in use holds between
them. A lease that ran out counts until the sweep records its expiry.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, or_, select
from sqlalchemy.orm import Session

from licentia.server.seats.models import SeatEvent

# What each kind of seat event does to the number of seats in use. A checkout or a
# borrow takes one; a release and a refusal record the number in use after them; the
# sweep records an expiry without counting, so it frees one.
TAKES = ("checkout", "borrow")
COUNTED = ("release", "force_release", "deny")

Event = tuple[date, str, int]  # (UTC day, kind, in_use)


def daily_peaks(
    session: Session, pools: ColumnElement[bool], first: date, since: datetime, days: int
) -> dict[date, int]:
    """Per day of the ``days`` days from ``first`` (starting at ``since``), the most
    seats in use at once in each pool whose events ``pools`` selects, summed over
    those pools. Two statements, however many pools: the anchors, then the events."""
    return replayed_peaks(session.execute(peaks_statement(pools), {"since": since}), first, days)


def peaks_statement(pools: ColumnElement[bool]) -> Select[str, datetime, str, int]:
    """The events of the pools ``pools`` selects that the replay needs, each pool's in
    time order: from each pool's last event before the bound value ``since`` that
    counted the seats in use (its anchor), or all of them. A caller asking often keeps
    it (built once, with bound values) and replays its rows with ``replayed_peaks``."""
    since = bindparam("since", type_=SeatEvent.at.type)
    anchors = (
        select(SeatEvent.license_id, func.max(SeatEvent.at).label("at"))
        .where(pools, SeatEvent.at < since, SeatEvent.kind.in_(COUNTED))
        .group_by(SeatEvent.license_id)
        .subquery()
    )
    return (
        select(SeatEvent.license_id, SeatEvent.at, SeatEvent.kind, SeatEvent.in_use)
        .outerjoin(anchors, anchors.c.license_id == SeatEvent.license_id)
        .where(pools, or_(anchors.c.at.is_(None), SeatEvent.at >= anchors.c.at))
        .order_by(SeatEvent.license_id, SeatEvent.at, SeatEvent.id)
    )


def replayed_peaks(rows: Iterable[Any], first: date, days: int) -> dict[date, int]:
    """``daily_peaks`` of the rows of a ``peaks_statement``."""
    peaks: dict[date, int] = defaultdict(int)
    for _, events in itertools.groupby(rows, key=lambda row: row[0]):
        replayed = [(_utc_day(at), kind, in_use) for _, at, kind, in_use in events]
        for day, peak in _pool_peaks(replayed, first, days).items():
            peaks[day] += peak
    return dict(peaks)


def _pool_peaks(events: Iterable[Event], first: date, days: int) -> dict[date, int]:
    """One pool's most seats in use per day, from its events in time order (starting
    with its anchor, if it has one)."""
    pending = list(events)
    level, index, peaks = 0, 0, {}
    while index < len(pending) and pending[index][0] < first:
        level, index = _after(level, *pending[index][1:]), index + 1
    for offset in range(days):
        day, peak = first + timedelta(days=offset), level  # held since an earlier day
        while index < len(pending) and pending[index][0] == day:
            level, index = _after(level, *pending[index][1:]), index + 1
            peak = max(peak, level)
        peaks[day] = peak
    return peaks


def _after(level: int, kind: str, in_use: int) -> int:
    if kind in TAKES:
        return level + 1
    if kind in COUNTED:
        return in_use
    return max(level - 1, 0)


def _utc_day(at: Any) -> date:
    """SQLite gives stored UTC times back without a zone, PostgreSQL with one."""
    moment: datetime = at
    return moment.date() if moment.tzinfo is None else moment.astimezone(UTC).date()
