"""Running jobs: one ``Worker`` per process claims due jobs and runs them.

Each job takes three short steps, each its own transaction or none: the claim (a
lease), the handler's work outside any transaction (a mail, a read, a computation),
and the commit of its effect together with its end (or, when it failed, its next
attempt). No transaction is held while a handler talks to the outside world.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from licentia.domain.ids import new_id
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_write
from licentia.server.jobs.queue import Job, LeaseLostError, claim, enqueue, finish, retry_later
from licentia.server.jobs.registry import Effect, Registry

log = logging.getLogger("licentia.jobs")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Outcome:
    """What became of one run: ``done``, or failed with ``error`` (``again``: it will be
    tried once more later)."""

    job_id: str
    done: bool
    error: str | None = None
    again: bool = False


@dataclass
class Worker:
    """Runs the registry's jobs for one process. ``clock`` is injectable so that a test
    can move past a retry's delay or into the next period instead of waiting."""

    db: Database
    registry: Registry
    lease: timedelta = timedelta(minutes=2)
    clock: Callable[[], datetime] = utcnow
    batch: int = 10
    _scheduled: dict[str, datetime] = field(default_factory=dict)

    def run_due(self) -> int:
        """Ask for this period's periodic jobs, then run due jobs until none is left;
        returns how many ran."""
        self.schedule()
        ran = 0
        while jobs := self._claim():
            for job in jobs:
                self.run(job)
                ran += 1
        return ran

    def run_now(self, job_id: str, *, retry: bool = True) -> Outcome | None:
        """Run the job ``job_id`` at once, in this thread, if it is due and no worker
        holds it (None otherwise: another worker has it, or it ran). With ``retry``
        False a failure is final: for a person who is told at once and decides."""
        token = new_id()
        jobs = run_write(
            self.db,
            lambda s: claim(s, token, self.clock(), self.lease, self.registry.names, job_id=job_id),
        )
        return self.run(jobs[0], retry=retry) if jobs else None

    def schedule(self) -> None:
        """Enqueue the current period's job of each periodic kind, once per period
        across all nodes (its key names the period); this process asks once a period."""
        now = self.clock()
        due = {}
        for kind in self.registry.periodic:
            assert kind.period is not None
            start = period_start(now, kind.period)
            if self._scheduled.get(kind.name) != start:
                due[kind.name] = (start, kind.max_attempts)
        if not due:
            return

        def add(session: Session) -> None:
            for name, (start, attempts) in due.items():
                enqueue(
                    session,
                    name,
                    {"period": start.isoformat()},
                    key=f"{name}@{start.isoformat()}",
                    run_at=start,
                    max_attempts=attempts,
                )

        run_write(self.db, add)
        self._scheduled.update({name: start for name, (start, _) in due.items()})

    def _claim(self) -> list[Job]:
        token = new_id()
        return run_write(
            self.db,
            lambda s: claim(
                s, token, self.clock(), self.lease, self.registry.names, limit=self.batch
            ),
        )

    def run(self, job: Job, *, retry: bool = True) -> Outcome:
        """Run a claimed job: its handler, then its effect and its end in one commit."""
        try:
            effect = self.registry.kind(job.kind).handler(job)
            self._commit(job, effect)
        except LeaseLostError:
            log.warning("job %s (%s) was taken over by another worker", job.id, job.kind)
            return Outcome(job.id, done=False, error="lease lost")
        except Exception as error:  # a failed job is retried, never the worker's end
            message = _describe(error)
            log.warning("job %s (%s) failed: %s", job.id, job.kind, message)
            again = run_write(
                self.db, lambda s: retry_later(s, job, self.clock(), message, retry=retry)
            )
            return Outcome(job.id, done=False, error=message, again=again)
        return Outcome(job.id, done=True)

    def _commit(self, job: Job, effect: Effect | None) -> None:
        def end(session: Session) -> None:
            finish(session, job, self.clock())
            if effect is not None:
                effect(session)

        run_write(self.db, end)


def period_start(now: datetime, period: timedelta) -> datetime:
    """The start of the period ``now`` is in, periods counted from the Unix epoch."""
    elapsed = now - _EPOCH
    return _EPOCH + period * (elapsed // period)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
