"""The queue's figures for monitoring: how many jobs of each kind wait, and how late
the oldest due one is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from licentia.server.jobs.models import JobRow


@dataclass(frozen=True)
class KindFigures:
    """``depth``: jobs pending (due or scheduled later, running ones included);
    ``due``: those whose time has come; ``lag_seconds``: how long the oldest due one
    has waited past its time (0 when none is due); ``failed``: jobs failed for good
    (kept until an operator looks at them)."""

    kind: str
    depth: int
    due: int
    lag_seconds: float
    failed: int


def queue_figures(session: Session, now: datetime) -> list[KindFigures]:
    """One entry per kind that has pending or failed jobs, by kind name."""
    rows = session.execute(figures_query(now).order_by(JobRow.kind)).all()
    return figures_of(rows, now)


def figures_query(now: datetime) -> Select[str, int, int, Any, int]:
    """The grouped query behind ``queue_figures``: rows of kind, depth, due, the oldest
    due job's time, failed (a caller may join other queues' rows to it)."""
    is_due = (JobRow.status == "pending") & (JobRow.run_at <= now)
    return (
        select(
            JobRow.kind,
            func.count().filter(JobRow.status == "pending"),
            func.count().filter(is_due),
            func.min(case((is_due, JobRow.run_at))),
            func.count().filter(JobRow.status == "failed"),
        )
        .where(JobRow.status.in_(("pending", "failed")))
        .group_by(JobRow.kind)
    )


def figures_of(rows: Iterable[Sequence[Any]], now: datetime) -> list[KindFigures]:
    """``KindFigures`` of rows shaped as ``figures_query``'s."""
    return [
        KindFigures(kind, depth, due, lag_seconds(now, oldest), failed)
        for kind, depth, due, oldest, failed in rows
    ]


def lag_seconds(now: datetime, oldest: datetime | str | None) -> float:
    if oldest is None:
        return 0.0
    if isinstance(oldest, str):  # SQLite's MIN() over a CASE loses the column's type
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
    return max(0.0, (now - oldest).total_seconds())
