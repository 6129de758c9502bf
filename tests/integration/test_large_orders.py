"""A large order is background work (issue 12, "Bounded creation"): accepted at once
(202, the order "processing", a Location to poll), its licenses issued by a job in
batches of ISSUE_BATCH, each its own short transaction, and completed exactly once,
whatever worker died or raced on the way. Idempotency keys still replay.

The job runs by hand here (a worker that knows only this kind of job), with a clock
the test moves past a dead worker's lease: no test waits for a timer.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licentia.server.audit.models import AuditEvent
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.jobs import Job, Registry, Worker
from licentia.server.jobs.models import JobRow
from licentia.server.jobs.queue import claim
from licentia.server.orders.issuing import ISSUE_BATCH, ISSUING_JOB, issue_batch
from licentia.server.orders.services import SYNCHRONOUS_LICENSES
from tests.factories import VendorHandle

LARGE = 2 * ISSUE_BATCH + 300  # three batches


class Clock:
    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead


def issuing_worker(
    database: Database,
    clock: Clock | None = None,
    *,
    lease: timedelta = timedelta(minutes=2),
    batch: int = 10,
) -> Worker:
    registry = Registry()
    registry.one_off(
        ISSUING_JOB, lambda job: lambda s: issue_batch(s, job.payload, utcnow()), max_attempts=5
    )
    return Worker(database, registry, lease=lease, clock=clock or utcnow, batch=batch)


def place(
    vendor: VendorHandle, sku: str, quantity: int, **headers: str
) -> tuple[int, dict[str, Any], str]:
    body = {
        "external_order_id": vendor.unique("BIG"),
        "lines": [{"sku": sku, "quantity": quantity}],
    }
    answer = vendor.post("/orders", json=body, headers=headers)
    return answer.status_code, answer.json(), answer.headers.get("location", "")


def licenses_of(vendor: VendorHandle, ticket_id: str) -> list[str]:
    ids: list[str] = vendor.ok("GET", f"/tickets/{ticket_id}")["license_ids"]
    return ids


def audited(database: Database, vendor: VendorHandle, action: str) -> int:
    return int(
        run_read(
            database,
            lambda s: s.scalar(
                select(func.count()).where(
                    AuditEvent.chain == vendor.id, AuditEvent.action == action
                )
            ),
        )
        or 0
    )


def test_a_large_order_is_accepted_at_once_and_issued_in_batches(vendors, database):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    status, order, location = place(vendor, sku, LARGE)
    assert status == 202 and order["status"] == "processing"
    assert location == f"/api/v1/orders/{order['id']}"
    assert vendor.ok("GET", f"/orders/{order['id']}")["status"] == "processing"
    assert licenses_of(vendor, order["ticket_id"]) == []  # nothing issued by the request
    worker = issuing_worker(database)
    outcome = worker.run_now(_job_of(database, order["id"]))
    assert outcome is not None and outcome.done
    assert len(licenses_of(vendor, order["ticket_id"])) == ISSUE_BATCH  # one batch a run
    worker.run_due()
    assert vendor.ok("GET", location.removeprefix("/api/v1"))["status"] == "completed"
    ids = licenses_of(vendor, order["ticket_id"])
    assert len(ids) == len(set(ids)) == LARGE
    assert vendor.ok("GET", f"/licenses/{ids[-1]}")["state"] == "available"
    assert audited(database, vendor, "license.issued") == LARGE
    assert audited(database, vendor, "order.completed") == 1


def test_an_order_up_to_the_threshold_is_still_answered_complete(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    status, order, location = place(vendor, sku, SYNCHRONOUS_LICENSES)
    assert (status, order["status"], location) == (201, "completed", "")
    assert len(licenses_of(vendor, order["ticket_id"])) == SYNCHRONOUS_LICENSES


def test_a_large_order_replays_by_idempotency_key_and_by_external_id(vendors, database):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    body = {"external_order_id": "ERP-BIG", "lines": [{"sku": sku, "quantity": LARGE}]}
    key = {"Idempotency-Key": "big-1"}
    first = vendor.post("/orders", json=body, headers=key)
    again = vendor.post("/orders", json=body, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert first.headers["location"] == again.headers["location"]
    same = vendor.post("/orders", json=body)  # no key: the same order, still processing
    assert same.status_code == 202 and same.json()["id"] == first.json()["id"]
    issuing_worker(database).run_due()
    done = vendor.post("/orders", json=body)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert vendor.post("/orders", json=body, headers=key).json() == first.json()  # replayed
    assert len(licenses_of(vendor, first.json()["ticket_id"])) == LARGE


def test_a_worker_that_dies_mid_order_leaves_nothing_and_the_order_completes_once(
    vendors, database
):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    _, order, _ = place(vendor, sku, LARGE)
    clock = Clock()
    lease = timedelta(seconds=60)
    worker = issuing_worker(database, clock, lease=lease)
    worker.run_now(_job_of(database, order["id"]))  # one batch committed
    # The next batch's job is claimed by a node that is then killed: its lease stands.
    next_job = _job_of(database, order["id"])
    [dead] = run_write(
        database, lambda s: claim(s, "killed", clock(), lease, [ISSUING_JOB], job_id=next_job)
    )
    assert isinstance(dead, Job)
    assert worker.run_due() == 0 and len(licenses_of(vendor, order["ticket_id"])) == ISSUE_BATCH
    clock.ahead = lease + timedelta(seconds=1)
    worker.run_due()
    assert vendor.ok("GET", f"/orders/{order['id']}")["status"] == "completed"
    assert len(licenses_of(vendor, order["ticket_id"])) == LARGE
    assert audited(database, vendor, "order.completed") == 1


@pytest.mark.parametrize("workers", [3])
def test_workers_racing_on_one_large_order_issue_each_license_once(vendors, database, workers):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    _, order, _ = place(vendor, sku, LARGE)
    gate = threading.Barrier(workers)

    def race() -> None:
        gate.wait()
        for _ in range(10):
            issuing_worker(database, batch=1).run_due()

    threads = [threading.Thread(target=race) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(licenses_of(vendor, order["ticket_id"])) == LARGE
    assert audited(database, vendor, "license.issued") == LARGE
    assert audited(database, vendor, "order.completed") == 1


def _job_of(database: Database, order_id: str) -> str:
    """The order's pending issuing job."""

    def find(session: Session) -> str:
        rows = session.execute(
            select(JobRow.id, JobRow.payload).where(
                JobRow.kind == ISSUING_JOB, JobRow.status == "pending"
            )
        ).all()
        [job_id] = [row.id for row in rows if row.payload["order_id"] == order_id]
        return str(job_id)

    return run_read(database, find)


def test_an_order_still_issuing_is_taken_back_only_once_completed(vendors, database):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    status, order, _ = place(vendor, sku, SYNCHRONOUS_LICENSES + 1)
    assert status == 202
    cancel = f"/orders/{order['id']}/actions/cancel"
    refused = vendor.post(cancel, json={})
    assert refused.status_code == 409 and refused.json()["code"] == "ORDER_PROCESSING"
    issuing_worker(database).run_due()
    assert vendor.ok("GET", f"/orders/{order['id']}")["status"] == "completed"
    cancelled = vendor.post(cancel, json={})
    assert cancelled.status_code == 200, cancelled.text
    ids = licenses_of(vendor, order["ticket_id"])
    assert len(ids) == SYNCHRONOUS_LICENSES + 1
    assert {vendor.ok("GET", f"/licenses/{i}")["state"] for i in ids[:3]} == {"withdrawn"}
