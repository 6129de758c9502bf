"""``/metrics`` of a real ``licentia serve`` as Prometheus scrapes it: under
``--workers 2`` (PostgreSQL; SQLite serves one process) the requests every worker
answered add up in one scrape, whichever worker answers it, and the job queues'
gauges, read from the database, show the jobs waiting.

The operator names the multiprocess folder (``PROMETHEUS_MULTIPROC_DIR``), so the test
can read each worker's own file and know that both workers counted."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client import multiprocess
from prometheus_client.parser import text_string_to_metric_families

from licentia.server.db.base import utcnow
from licentia.server.db.engine import connect, run_write
from licentia.server.jobs import enqueue
from tests.e2e.databases import fresh_database
from tests.e2e.harness.cluster import serve
from tests.support.servers import new_environment

pytestmark = pytest.mark.slow

ROUTE = {"method": "GET", "route": "/healthz", "status": "200"}
MOST_REQUESTS = 2000  # sent in rounds until every worker has answered some


def _scrape(url: str, token: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    answer = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _counted_by_each_worker(folder: Path) -> list[float]:
    """The health checks each process counted, from its own file."""
    counts = []
    for path in sorted(folder.glob("counter_*.db")):
        [family] = [
            m
            for m in multiprocess.MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
                [str(path)], accumulate=False
            )
            if m.name == "licentia_http_requests"
        ] or [None]
        samples = [] if family is None else family.samples
        counts.append(sum(s.value for s in samples if s.labels == ROUTE))
    return counts


def _health_checks(url: str, count: int) -> None:
    """``count`` health checks, each on a connection of its own and eight at a time,
    so that the kernel hands them to whichever worker is free."""
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.get(f"{url}/healthz", timeout=30), range(count)))
    assert all(answer.status_code == 200 for answer in answers)


def test_the_workers_requests_add_up_and_the_queue_gauges_show_the_waiting_jobs(
    backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
):
    workdir = tmp_path_factory.mktemp("metrics-workers")
    folder = workdir / "metrics"
    folder.mkdir()
    token = secrets.token_urlsafe(24)
    workers = 2 if backend == "postgresql" else 1
    with fresh_database(database_url, workdir) as url:
        extra = {"LICENTIA_METRICS_TOKEN": token, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
        env = new_environment(url, workdir, extra)
        env.cli("db", "upgrade")
        with serve(env, 1, workers=workers) as (server,):
            sent, counting = 0, list[float]()
            while sent < MOST_REQUESTS and len(counting) < workers:
                _health_checks(server.url, 20)
                sent += 20
                # the supervising process has a file too, with nothing counted
                counting = [c for c in _counted_by_each_worker(folder) if c > 0]
            assert len(counting) == workers and sum(counting) == sent, counting

            first = _scrape(server.url, token)
            assert first[("licentia_http_requests_total", frozenset(ROUTE.items()))] == sent

            db = connect(url)
            try:
                later, overdue = utcnow() + timedelta(hours=1), utcnow() - timedelta(minutes=2)
                run_write(db, lambda s: enqueue(s, "orders.issue", {}, run_at=later))
                # a kind no process of this server runs: it stays due, and late
                run_write(db, lambda s: enqueue(s, "elsewhere.kind", {}, run_at=overdue))
            finally:
                db.dispose()
            second = _scrape(server.url, token)

    def gauge(name: str, kind: str) -> float:
        return second[(name, frozenset({("kind", kind)}))]

    assert gauge("licentia_job_queue_depth", "orders.issue") == 1
    assert gauge("licentia_job_queue_due", "orders.issue") == 0
    assert gauge("licentia_job_queue_lag_seconds", "orders.issue") == 0
    assert gauge("licentia_job_queue_depth", "elsewhere.kind") == 1
    assert gauge("licentia_job_queue_due", "elsewhere.kind") == 1
    assert gauge("licentia_job_queue_lag_seconds", "elsewhere.kind") >= 120
    # idle queues have their series too, at 0
    assert gauge("licentia_job_queue_depth", "mail.send") == 0
    assert gauge("licentia_job_queue_depth", "webhooks.delivery") == 0
    assert gauge("licentia_jobs_failed", "webhooks.delivery") == 0
    assert ("licentia_webhook_deliveries_failed_total", frozenset()) in second
