"""Durable jobs on a real database: a job exists only with the change that asked for
it, runs once, is retried after a failure, is taken over when its worker's lease
ends (the worker died), and a periodic job runs once per period across nodes.

Each test registers kinds of its own (the job table is shared by the session's tests)
and runs workers by hand with a clock it moves: no test waits for a timer. A job's
effect here is a row of the job table itself (a marker job whose key names the job
that made it): what the test counts is what was committed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licentia.domain.ids import new_id
from licentia.server.background import queue_figures
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.jobs import Job, LeaseLostError, Registry, Worker, enqueue
from licentia.server.jobs.models import JobRow
from licentia.server.jobs.queue import claim, finish
from licentia.server.jobs.runner import period_start


class Clock:
    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead

    def advance(self, delta: timedelta) -> None:
        self.ahead += delta


class Kinds:
    """Kinds of this test only: ``work`` leaves a marker per run it commits."""

    def __init__(self) -> None:
        self.prefix = f"test-{new_id().replace('-', '')[-16:]}"  # the tail: random
        self.work = f"{self.prefix}.work"
        self.marker = f"{self.prefix}.marker"
        self.calls: list[str] = []
        self.failing = 0  # the next runs that raise

    def handler(self, job: Job) -> Callable[[Session], object]:
        self.calls.append(job.id)
        if self.failing:
            self.failing -= 1
            raise RuntimeError("the receiver is down")
        return lambda s: enqueue(s, self.marker, {"of": job.id}, key=f"{self.marker}:{job.id}")

    def registry(self) -> Registry:
        registry = Registry()
        registry.one_off(self.work, self.handler, max_attempts=3)
        return registry

    def markers(self, database: Database) -> list[str]:
        rows = run_read(
            database,
            lambda s: s.scalars(select(JobRow.payload).where(JobRow.kind == self.marker)).all(),
        )
        return sorted(row["of"] for row in rows)

    def status(self, database: Database, job_id: str) -> tuple[str, int]:
        row = run_read(database, lambda s: s.get(JobRow, job_id))
        assert row is not None
        return row.status, row.attempts


@pytest.fixture
def kinds() -> Kinds:
    return Kinds()


def test_a_job_exists_only_if_the_change_that_asked_for_it_committed(database, kinds):
    worker = Worker(database, kinds.registry())

    class RefusedError(Exception):
        pass

    def ask_then_fail(session: Session) -> None:
        enqueue(session, kinds.work, {})
        raise RefusedError

    with pytest.raises(RefusedError):
        run_write(database, ask_then_fail)
    job_id = run_write(database, lambda s: enqueue(s, kinds.work, {}))
    assert worker.run_due() == 1 and worker.run_due() == 0
    assert kinds.markers(database) == [job_id]
    assert kinds.status(database, job_id) == ("done", 1)


def test_a_natural_key_makes_one_job_however_often_it_is_asked_for(database, kinds):
    key = f"{kinds.prefix}:license-1:2027-01-01"
    first = run_write(database, lambda s: enqueue(s, kinds.work, {}, key=key))
    again = [run_write(database, lambda s: enqueue(s, kinds.work, {}, key=key)) for _ in range(3)]
    assert first is not None and again == [None, None, None]
    Worker(database, kinds.registry()).run_due()
    assert run_write(database, lambda s: enqueue(s, kinds.work, {}, key=key)) is None  # done too
    assert kinds.markers(database) == [first]


def test_a_failed_job_is_retried_later_and_fails_for_good_when_its_attempts_are_spent(
    database, kinds
):
    clock = Clock()
    worker = Worker(database, kinds.registry(), clock=clock)
    kinds.failing = 1
    retried = run_write(database, lambda s: enqueue(s, kinds.work, {}, max_attempts=3))
    worker.run_due()
    assert kinds.status(database, retried) == ("pending", 1) and kinds.markers(database) == []
    assert worker.run_due() == 0  # not before its delay
    clock.advance(timedelta(seconds=6))
    worker.run_due()
    assert kinds.status(database, retried) == ("done", 2)
    kinds.failing = 3
    doomed = run_write(database, lambda s: enqueue(s, kinds.work, {}, max_attempts=3))
    for _ in range(3):
        worker.run_due()
        clock.advance(timedelta(minutes=1))
    assert kinds.status(database, doomed) == ("failed", 3)
    assert kinds.markers(database) == [retried]
    row = run_read(database, lambda s: s.get(JobRow, doomed))
    assert row is not None and row.last_error == "RuntimeError: the receiver is down"


def test_a_job_whose_worker_died_is_run_by_another_after_the_lease_and_once(database, kinds):
    clock = Clock()
    lease = timedelta(seconds=30)
    job_id = run_write(database, lambda s: enqueue(s, kinds.work, {}))
    # A worker claims the job, then its node dies: the job stays leased to it.
    [dead] = run_write(database, lambda s: claim(s, "dead-node", clock(), lease, [kinds.work]))
    survivor = Worker(database, kinds.registry(), lease=lease, clock=clock)
    assert survivor.run_due() == 0  # leased: not yet
    clock.advance(lease + timedelta(seconds=1))
    assert survivor.run_due() == 1
    # The first worker was only stalled and comes back: it may not commit a second effect.
    with pytest.raises(LeaseLostError):
        run_write(database, lambda s: finish(s, dead, clock()))
    assert kinds.markers(database) == [job_id]
    assert kinds.status(database, job_id) == ("done", 2)


def test_a_periodic_job_runs_once_per_period_across_nodes(database, kinds):
    clock = Clock()
    period = timedelta(hours=1)
    nodes = []
    for _ in range(3):
        registry = Registry()
        registry.every(kinds.work, period, kinds.handler)
        nodes.append(Worker(database, registry, clock=clock))
    for node in nodes:
        node.run_due()
    clock.advance(period)
    for node in nodes:
        node.run_due()
        node.run_due()
    runs = kinds.markers(database)
    assert len(runs) == 2 and len(kinds.calls) == 2
    keys = run_read(
        database,
        lambda s: s.scalars(select(JobRow.key).where(JobRow.kind == kinds.work)).all(),
    )
    start = period_start(clock(), period)
    assert f"{kinds.work}@{start.isoformat()}" in keys


def test_workers_racing_for_jobs_run_each_once(database, backend, kinds):
    jobs = run_write(database, lambda s: [enqueue(s, kinds.work, {}) for _ in range(60)])
    workers = [Worker(database, kinds.registry(), batch=3) for _ in range(4)]
    gate = threading.Barrier(len(workers))

    def race(worker: Worker) -> None:
        gate.wait()
        worker.run_due()

    threads = [threading.Thread(target=race, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kinds.markers(database) == sorted(str(job) for job in jobs)
    assert len(kinds.calls) == len(jobs)  # each handler ran once: no job was claimed twice


def test_queue_figures_give_each_kinds_depth_and_lag(database, kinds):
    clock = Clock()
    run_write(database, lambda s: [enqueue(s, kinds.work, {}) for _ in range(3)])
    later = clock() + timedelta(hours=1)
    run_write(database, lambda s: enqueue(s, kinds.work, {}, run_at=later))
    clock.advance(timedelta(seconds=90))
    [mine] = [f for f in queue_figures(database, clock()) if f.kind == kinds.work]
    assert (mine.depth, mine.due, mine.failed) == (4, 3, 0)
    assert 90 <= mine.lag_seconds < 200
    Worker(database, kinds.registry(), clock=clock).run_due()
    [mine] = [f for f in queue_figures(database, clock()) if f.kind == kinds.work]
    assert (mine.depth, mine.due, mine.lag_seconds) == (1, 0, 0.0)


def test_run_now_runs_one_job_before_its_time_unless_a_worker_holds_it(database, kinds):
    worker = Worker(database, kinds.registry())
    later = utcnow() + timedelta(minutes=5)
    job_id = run_write(database, lambda s: enqueue(s, kinds.work, {}, run_at=later))
    assert job_id is not None and worker.run_due() == 0
    outcome = worker.run_now(job_id)
    assert outcome is not None and outcome.done
    assert worker.run_now(job_id) is None  # done: nothing to run
    assert kinds.markers(database) == [job_id]
    count = run_read(
        database, lambda s: s.scalar(select(func.count()).where(JobRow.kind == kinds.work))
    )
    assert count == 1
