"""The job table's operations, each inside the caller's transaction.

Claiming takes due rows with ``FOR UPDATE SKIP LOCKED``: workers of several nodes
claim different jobs and never wait for each other (SQLite ignores the clause: one
writer at a time, and one server process). A claim counts an attempt and leases the
job to a token until ``now + lease``; ``finish`` and ``retry_later`` act only while
that token still holds it, so a worker that lost its lease (it stalled past the end,
and another worker took the job over) changes nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from licentia.domain.errors import NotFoundError
from licentia.domain.ids import new_id
from licentia.server.db.base import utcnow
from licentia.server.jobs.models import JobRow

DEFAULT_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=5)
LONGEST_RETRY = timedelta(hours=1)
ERROR_CHARS = 500


class LeaseLostError(RuntimeError):
    """The job is no longer leased to this worker: its effect must not be committed."""


@dataclass(frozen=True)
class Job:
    """A claimed job, as its handler sees it."""

    id: str
    kind: str
    payload: dict[str, Any]
    key: str | None
    attempts: int
    token: str


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any],
    *,
    key: str | None = None,
    run_at: datetime | None = None,
    max_attempts: int = DEFAULT_ATTEMPTS,
    job_id: str | None = None,
    vendor_id: str | None = None,
) -> str | None:
    """Add a job in the caller's transaction; returns its id. With ``key``, a job that
    already has that key (pending, done or failed) wins: nothing is added and None is
    returned, so asking twice for one natural effect makes one job. ``vendor_id``: the
    vendor it works for, whose staff may see it fail and retry it."""
    now = utcnow()
    row = {
        "id": job_id or new_id(),
        "kind": kind,
        "vendor_id": vendor_id,
        "key": key,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_at": run_at or now,
        "created_at": now,
    }
    if key is None:
        session.execute(insert(JobRow), row)
        return str(row["id"])
    dialect = session.connection().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(JobRow).values(row).on_conflict_do_nothing(index_elements=["key"])
    added = session.execute(statement.returning(JobRow.id)).scalar_one_or_none()
    return None if added is None else str(added)


def _due(now: datetime) -> Any:
    return (
        (JobRow.status == "pending")
        & (JobRow.run_at <= now)
        & or_(JobRow.claimed_until.is_(None), JobRow.claimed_until < now)
    )


def claim(
    session: Session,
    token: str,
    now: datetime,
    lease: timedelta,
    kinds: list[str],
    *,
    limit: int = 10,
    job_id: str | None = None,
) -> list[Job]:
    """Lease up to ``limit`` due jobs of ``kinds`` (or the one job ``job_id``, due or
    not yet) to ``token``, oldest first. A job whose attempts are spent (its workers kept dying
    with it) is failed instead of claimed."""
    if job_id is None:
        query = select(JobRow).where(_due(now), JobRow.kind.in_(kinds))
    else:  # the one job, even before its time: the process that asked for it tries first
        query = select(JobRow).where(
            JobRow.id == job_id,
            JobRow.kind.in_(kinds),
            JobRow.status == "pending",
            or_(JobRow.claimed_until.is_(None), JobRow.claimed_until < now),
        )
    rows = session.scalars(
        query.order_by(JobRow.run_at, JobRow.id).limit(limit).with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row in rows:
        if row.attempts >= row.max_attempts:
            row.status, row.finished_at = "failed", now
            row.claimed_by = row.claimed_until = None
            row.last_error = row.last_error or "its worker stopped before it finished"
            continue
        row.attempts += 1
        row.claimed_by, row.claimed_until = token, now + lease
        claimed.append(Job(row.id, row.kind, dict(row.payload), row.key, row.attempts, token))
    return claimed


def _held(session: Session, job: Job) -> JobRow:
    row = session.scalars(
        select(JobRow)
        .where(JobRow.id == job.id, JobRow.claimed_by == job.token, JobRow.status == "pending")
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise LeaseLostError(f"job {job.id} is no longer leased to this worker")
    return row


def finish(session: Session, job: Job, now: datetime) -> None:
    """Mark the job done; raises LeaseLostError if this worker no longer holds it.
    Called first in the transaction that commits the job's effect, it locks the row:
    the effect and the job's end are committed together or not at all."""
    row = _held(session, job)
    row.status, row.finished_at = "done", now
    row.claimed_by = row.claimed_until = None


def retry_later(session: Session, job: Job, now: datetime, error: str, *, retry: bool) -> bool:
    """Record a failed attempt: due again after a growing, jittered delay, or failed
    for good when its attempts are spent or ``retry`` is False. Returns whether it
    will run again; False too when this worker no longer held it."""
    try:
        row = _held(session, job)
    except LeaseLostError:
        return False
    row.claimed_by = row.claimed_until = None
    row.last_error = error[:ERROR_CHARS]
    if not retry or row.attempts >= row.max_attempts:
        row.status, row.finished_at = "failed", now
        return False
    row.run_at = now + retry_delay(row.attempts)
    return True


def retry_delay(attempts: int) -> timedelta:
    """5 s after the first failure, doubling to an hour at most, each with jitter
    (between half and all of it) so that failed jobs do not return in step."""
    delay: timedelta = min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)
    jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries, not a secret
    return delay * jitter


def prune(session: Session, before: datetime) -> int:
    """Delete jobs done before ``before``; failed ones stay for the operator to see."""
    result = session.execute(
        delete(JobRow).where(JobRow.status == "done", JobRow.finished_at < before)
    )
    return int(getattr(result, "rowcount", 0))


def failed_jobs_query(vendor_id: str | None) -> Select[JobRow]:
    """Jobs failed for good, of ``vendor_id`` (None: the server's own jobs, which work
    for no vendor). Paginated by the caller, by id."""
    owner = JobRow.vendor_id.is_(None) if vendor_id is None else JobRow.vendor_id == vendor_id
    return select(JobRow).where(JobRow.status == "failed", owner)


def retry_failed(session: Session, job_id: str, vendor_id: str | None, now: datetime) -> JobRow:
    """Make the failed job ``job_id`` of ``vendor_id`` due again at ``now``, with all
    its attempts. Raises NotFoundError if no such failed job is there (it is another
    vendor's, pending again already, or gone)."""
    row = session.scalars(
        failed_jobs_query(vendor_id).where(JobRow.id == job_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError("failed job", job_id)
    row.status, row.attempts, row.run_at, row.finished_at = "pending", 0, now, None
    return row


def pending_job(session: Session, job_id: str) -> bool:
    """Whether the job is still to be done (not done, not failed for good)."""
    status = session.scalar(select(JobRow.status).where(JobRow.id == job_id))
    return status == "pending"
