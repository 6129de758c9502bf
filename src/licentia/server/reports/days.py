"""Counting by UTC calendar day, for the read models that chart a period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


def period(now: datetime, days: int) -> tuple[date, datetime]:
    """The first day of the ``days`` days up to ``now`` (today last), and its start."""
    first = now.date() - timedelta(days=days - 1)
    return first, datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)


def day_of(session: Session, column: Any) -> ColumnElement[Any]:
    """The UTC calendar day of a stored time (SQLite keeps UTC without a zone)."""
    return day_in(session.get_bind().dialect.name, column)


def day_in(dialect: str, column: Any) -> ColumnElement[Any]:
    """``day_of`` for a statement built once for the database ``dialect``."""
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def every_day(first: date, days: int, counts: dict[date, int]) -> list[DayCount]:
    """One entry per day, zero where nothing happened."""
    return [
        DayCount(day, counts.get(day, 0))
        for day in (first + timedelta(days=offset) for offset in range(days))
    ]
