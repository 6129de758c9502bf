"""Bulk replay: every event whose delivery to an endpoint failed is sent again with one
call, within a time range, a bounded number per call, and never twice while a replay
is pending or delivered, also when several calls race."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.scopes import SCOPES
from licentia.domain.webhooks import MAX_ATTEMPTS
from licentia.server.db.base import utcnow
from licentia.server.webhooks import services as webhooks
from licentia.server.webhooks.delivery import Deliverer
from licentia.server.webhooks.egress import delivery_client
from tests.factories import VendorHandle
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver(status=500).start()
    yield started
    started.stop()


class Job:
    """The delivery job with a clock the test moves past every retry."""

    def __init__(self, deliverer: Deliverer) -> None:
        self.deliverer, self.ahead = deliverer, timedelta(0)
        deliverer.clock = lambda: utcnow() + self.ahead

    def fail_for_good(self) -> None:
        for _ in range(MAX_ATTEMPTS):
            self.deliverer.deliver_due()
            self.ahead += timedelta(hours=7)  # past the longest delay

    def deliver(self) -> None:
        self.deliverer.deliver_due()


@pytest.fixture
def job(database, master, settings) -> Iterator[Job]:
    with delivery_client(settings.webhook_targets, timeout=10) as http:
        yield Job(Deliverer(database, master, http))


def failed_events(vendor: VendorHandle, receiver: WebhookReceiver, job: Job, n: int) -> str:
    """An endpoint that failed ``n`` suspensions for good (and so was disabled), then
    was enabled again with its receiver working; returns its id."""
    body = {"url": receiver.url, "event_types": ["license.suspended"]}
    endpoint = vendor.ok("POST", "/webhook-endpoints", json=body)
    receiver.secrets.append(endpoint["secret"])
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": n}])
    for license_id in vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]:
        vendor.ok("POST", f"/licenses/{license_id}/actions/suspend", json={})
    job.fail_for_good()
    statuses = [d["status"] for d in deliveries(vendor, endpoint["id"])]
    assert statuses == ["failed"] * n
    vendor.ok("PATCH", f"/webhook-endpoints/{endpoint['id']}", json={"enabled": True})
    receiver.status = 204
    return str(endpoint["id"])


def deliveries(vendor: VendorHandle, endpoint_id: str) -> list[dict[str, Any]]:
    page = vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}/deliveries", params={"limit": 200})
    return list(page["items"])


def replay(vendor: VendorHandle, endpoint_id: str, **body: Any) -> dict[str, Any]:
    path = f"/webhook-endpoints/{endpoint_id}/actions/replay-failed"
    return dict(vendor.ok("POST", path, json=body))


def test_every_failed_event_is_sent_again_once(vendors, receiver, job):
    vendor = vendors.create()
    endpoint_id = failed_events(vendor, receiver, job, 3)
    assert replay(vendor, endpoint_id) == {"replayed": 3, "more": False}
    assert replay(vendor, endpoint_id) == {"replayed": 0, "more": False}  # they wait
    job.deliver()
    assert len({r.webhook_id for r in receiver.received}) == len(receiver.received) == 3
    assert replay(vendor, endpoint_id) == {"replayed": 0, "more": False}  # delivered
    statuses = sorted(d["status"] for d in deliveries(vendor, endpoint_id))
    assert statuses == ["delivered"] * 3 + ["failed"] * 3
    audited = vendor.ok(
        "GET", "/audit-events", params={"action": "webhook_endpoint.failed_replayed"}
    )
    assert [e["after"]["events"] for e in audited["items"]] == [3, 0, 0]


def test_racing_bulk_replays_send_each_event_once(vendors, receiver, job):
    vendor = vendors.create()
    endpoint_id = failed_events(vendor, receiver, job, 4)
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: replay(vendor, endpoint_id), range(4)))
    assert sum(a["replayed"] for a in answers) == 4
    job.deliver()
    assert len({r.webhook_id for r in receiver.received}) == len(receiver.received) == 4


def test_a_replay_keeps_to_its_time_range_and_its_bound(vendors, receiver, job, database):
    vendor = vendors.create()
    endpoint_id = failed_events(vendor, receiver, job, 3)
    times = sorted(
        datetime.fromisoformat(d["payload"]["timestamp"]) for d in deliveries(vendor, endpoint_id)
    )
    first, last = times[0], times[-1]
    later = (last + timedelta(seconds=1)).isoformat()
    assert replay(vendor, endpoint_id, since=later) == {"replayed": 0, "more": False}
    assert replay(vendor, endpoint_id, until=first.isoformat()) == {"replayed": 0, "more": False}
    backwards = vendor.post(
        f"/webhook-endpoints/{endpoint_id}/actions/replay-failed",
        json={"since": later, "until": first.isoformat()},
    )
    assert backwards.status_code == 422 and backwards.json()["code"] == "VALIDATION_FAILED"

    actor = Actor(ActorKind.API_KEY, "test", vendor.id, frozenset(SCOPES))
    with database.transaction() as session:
        bounded = webhooks.replay_failed(session, actor, endpoint_id, since=first, limit=2)
    assert (bounded.replayed, bounded.more) == (2, True)
    assert replay(vendor, endpoint_id, since=first.isoformat()) == {"replayed": 1, "more": False}
