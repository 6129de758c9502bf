"""Counting an event when, and only if, the transaction that made it commits.

A use case that activates a license runs inside a unit of work that may still fail
or be run again (a lost uniqueness race is retried). It notes its count on the
session (:func:`tally`); the count is added when the session commits and forgotten
when it rolls back, so that a retried transaction counts once.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.orm import Session

_PENDING = "licentia.tallies"


def tally(session: Session, counter: Counter, *labels: str, amount: float = 1) -> None:
    """Add ``amount`` to ``counter`` (with ``labels``) once the session commits."""
    pending: list[tuple[Counter, tuple[str, ...], float]] = session.info.setdefault(_PENDING, [])
    pending.append((counter, labels, amount))


@event.listens_for(Session, "after_commit")
def _count(session: Session) -> None:
    for counter, labels, amount in session.info.pop(_PENDING, ()):
        (counter.labels(*labels) if labels else counter).inc(amount)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session, *_: Any) -> None:
    session.info.pop(_PENDING, None)
