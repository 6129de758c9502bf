"""Webhooks end to end: changes through the API become events in the outbox, which
the delivery job sends, signed per Standard Webhooks, to a real receiver that checks
the signature with the reference library.

The job is run a round at a time (``Deliverer.deliver_due``) with a clock the test
moves past each retry's delay: no test waits for a timer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.scopes import SCOPES
from licentia.domain.webhooks import EVENT_TYPES, MAX_ATTEMPTS
from licentia.server.api import create_app
from licentia.server.audit.models import AuditEvent
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, connect
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.services import change_state
from licentia.server.settings import Settings
from licentia.server.webhooks.delivery import Deliverer, claim, fan_out
from licentia.server.webhooks.egress import delivery_client
from licentia.server.webhooks.models import WebhookEvent
from licentia.server.webhooks.wakeups import CHANNEL
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice
from tests.support.webhook_receiver import WebhookReceiver

SCHEMAS = Path(__file__).parents[2] / "docs" / "webhook-events"
JOSE = {"Content-Type": "application/jose"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


class Clock:
    """The job's clock: the real time, moved ahead by the test."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead

    def advance(self, delta: timedelta) -> None:
        self.ahead += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def deliverer(
    database: Database, master: MasterKey, clock: Clock, settings: Settings
) -> Iterator[Deliverer]:
    with delivery_client(settings.webhook_targets, timeout=10) as http:
        yield Deliverer(database, master, http, clock=clock)


def register(vendor: VendorHandle, receiver: WebhookReceiver, **body: Any) -> dict[str, Any]:
    endpoint = vendor.ok("POST", "/webhook-endpoints", json={"url": receiver.url, **body})
    receiver.secrets.append(endpoint["secret"])
    return endpoint


def suspend(vendor: VendorHandle, license_id: str, action: str = "suspend") -> None:
    vendor.ok("POST", f"/licenses/{license_id}/actions/{action}", json={})


def licenses_of(vendor: VendorHandle, quantity: int, options: dict | None = None) -> list[str]:
    template = vendor.template(options)
    order = vendor.order([{"sku": template["sku"], "quantity": quantity}])
    return list(vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"])


def deliveries(vendor: VendorHandle, endpoint_id: str) -> list[dict[str, Any]]:
    page = vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}/deliveries", params={"limit": 200})
    return list(page["items"])


def wait_for(done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = utcnow() + timedelta(seconds=seconds)
    while not done() and utcnow() < deadline:
        threading.Event().wait(0.05)


def listeners(database: Database) -> int:
    """Connections to this database listening for webhook events (their last statement
    was the LISTEN)."""
    with database.read() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query = :listen"
                ),
                {"listen": f"LISTEN {CHANNEL}"},
            )
        )


def types_by_object(receiver: WebhookReceiver) -> dict[str, list[str]]:
    """The types of the events received, per object, in the order they arrived."""
    found: dict[str, list[str]] = {}
    for got in receiver.received:
        found.setdefault(got.payload["data"]["id"], []).append(got.payload["type"])
    return found


def schema_of(event_type: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / f"{event_type}.schema.json").read_text()))


# --- the catalogue -----------------------------------------------------------------------


def test_every_event_of_the_catalogue_has_a_schema():
    assert sorted(p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.json")) == sorted(
        EVENT_TYPES
    )
    for event_type in EVENT_TYPES:
        jsonschema.Draft202012Validator.check_schema(schema_of(event_type))


def test_a_receiver_gets_each_change_signed_and_shaped_as_its_schema_says(
    vendors, receiver, deliverer
):
    vendor = vendors.create()
    register(vendor, receiver)
    device_template = vendor.template({"delivery": "device"})
    order = vendor.order([{"sku": device_template["sku"], "quantity": 1}])
    device = BareDevice(vendor.slug)
    activated = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=device.request("activate", order["ticket_code"]),
        headers=JOSE,
    )
    assert activated.status_code == 200, activated.text
    (license_id,) = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    returned = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/returns",
        content=device.return_proof(license_id),
        headers=JOSE,
    )
    assert returned.status_code == 200, returned.text
    for action in ("suspend", "resume", "withdraw"):
        suspend(vendor, license_id, action)

    deliverer.deliver_due()  # the shared database may hold other tests' deliveries too
    assert types_by_object(receiver) == {  # in order per object
        order["ticket_id"]: ["ticket.created"],
        order["id"]: ["order.created"],
        license_id: [
            "license.activated",
            "license.returned",
            "license.suspended",
            "license.resumed",
            "license.withdrawn",
        ],
    }
    for got in receiver.received:
        jsonschema.validate(got.payload, schema_of(got.payload["type"]))
        assert got.webhook_id == got.payload["id"]
    assert "ticket_code" not in receiver.json()  # a ticket's code is never sent


def test_an_endpoint_gets_only_the_events_of_its_filter(vendors, receiver, deliverer):
    vendor = vendors.create()
    endpoint = register(vendor, receiver, event_types=["license.suspended"])
    (license_id,) = licenses_of(vendor, 1)
    suspend(vendor, license_id)
    deliverer.deliver_due()
    assert receiver.types() == ["license.suspended"]
    (logged,) = deliveries(vendor, endpoint["id"])
    assert logged["status"] == "delivered" and logged["event_type"] == "license.suspended"
    assert [(a["status_code"], a["response_excerpt"]) for a in logged["attempts"]] == [(204, "")]


def test_no_event_without_its_change_and_no_change_without_its_event(vendors, database):
    vendor = vendors.create()
    first, second = licenses_of(vendor, 2)
    actor = Actor(ActorKind.API_KEY, "test", vendor.id, frozenset(SCOPES))
    with pytest.raises(RuntimeError), database.transaction() as session:
        change_state(session, actor, first, "suspend")
        raise RuntimeError("the unit of work fails after the change")
    suspend(vendor, second)

    with database.read() as session:
        events = session.execute(
            select(WebhookEvent.type, WebhookEvent.object_id)
            .where(WebhookEvent.vendor_id == vendor.id)
            .order_by(WebhookEvent.seq)
        ).all()
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.chain == vendor.id, AuditEvent.action.in_(EVENT_TYPES))
        )
    assert vendor.ok("GET", f"/licenses/{first}")["state"] == "available"
    suspensions = [e for e in events if e.type == "license.suspended"]
    assert [e.object_id for e in suspensions] == [second]
    assert len(events) == audited  # every change of the catalogue has exactly one event


# --- failures, retries, order --------------------------------------------------------------


def test_a_receiver_down_for_a_while_gets_every_event_once_in_order_per_object(
    vendors, receiver, deliverer, clock
):
    vendor = vendors.create()
    endpoint = register(vendor, receiver, event_types=["license.suspended", "license.resumed"])
    first, second = licenses_of(vendor, 2)
    receiver.stop()
    for action in ("suspend", "resume", "suspend"):
        suspend(vendor, first, action)
    suspend(vendor, second)

    deliverer.deliver_due()  # refused: nothing listens
    clock.advance(timedelta(seconds=10))
    assert deliverer.deliver_due() == 0  # each waits for its retry
    logged = deliveries(vendor, endpoint["id"])
    assert [d["status"] for d in logged] == ["pending"] * 4
    failed = [d for d in logged if d["attempts"]]
    assert len(failed) == 2  # an object's later events wait for its first
    assert all(d["attempts"][0]["error"].startswith("ConnectError") for d in failed)

    receiver.start()
    for _ in range(MAX_ATTEMPTS):
        clock.advance(timedelta(hours=6))
        deliverer.deliver_due()
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == 4
    by_object = [
        (r.payload["data"]["id"], r.payload["type"], r.payload["data"]["state"])
        for r in receiver.received
    ]
    assert [b[1:] for b in by_object if b[0] == first] == [
        ("license.suspended", "suspended"),
        ("license.resumed", "available"),
        ("license.suspended", "suspended"),
    ]
    assert [d["status"] for d in deliveries(vendor, endpoint["id"])] == ["delivered"] * 4


def test_events_of_different_objects_are_sent_together_an_objects_own_one_by_one(
    vendors, receiver, deliverer
):
    vendor = vendors.create()
    register(vendor, receiver, event_types=["license.suspended", "license.resumed"])
    licenses = licenses_of(vendor, 4)
    for license_id in licenses:
        suspend(vendor, license_id)
        suspend(vendor, license_id, "resume")
    # each request is answered only once four are in flight: sent one by one, the
    # first would wait in vain and every answer would be a 503
    receiver.together = threading.Barrier(4, timeout=30)
    deliverer.deliver_due()
    assert receiver.overlapping == []  # never two requests of one object at once
    assert types_by_object(receiver) == {
        license_id: ["license.suspended", "license.resumed"] for license_id in licenses
    }


def test_an_endpoint_failing_for_a_day_is_disabled_and_replay_sends_again(
    vendors, receiver, deliverer, clock
):
    vendor = vendors.create()
    endpoint = register(vendor, receiver, event_types=["license.suspended"])
    receiver.status = 500
    (license_id,) = licenses_of(vendor, 1)
    suspend(vendor, license_id)
    for _ in range(MAX_ATTEMPTS):
        deliverer.deliver_due()
        (pending,) = deliveries(vendor, endpoint["id"])
        if pending["next_attempt_at"] is not None:  # move the clock to the next attempt
            clock.advance(datetime.fromisoformat(pending["next_attempt_at"]) - clock())
    (logged,) = deliveries(vendor, endpoint["id"])
    assert logged["status"] == "failed"
    assert len(logged["attempts"]) == MAX_ATTEMPTS
    assert {a["status_code"] for a in logged["attempts"]} == {500}
    assert logged["attempts"][0]["response_excerpt"] == "receiver says hello"
    first, last = (datetime.fromisoformat(logged["attempts"][i]["at"]) for i in (0, -1))
    assert timedelta(hours=19) < last - first < timedelta(hours=27)  # about a day
    shown = vendor.ok("GET", f"/webhook-endpoints/{endpoint['id']}")
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "failing")

    receiver.status = 204
    vendor.ok("PATCH", f"/webhook-endpoints/{endpoint['id']}", json={"enabled": True})
    replay = vendor.ok("POST", f"/webhook-deliveries/{logged['id']}/actions/replay")
    assert replay["status"] == "pending" and replay["event_id"] == logged["event_id"]
    deliverer.deliver_due()
    assert [r.webhook_id for r in receiver.received] == [logged["event_id"]]
    assert vendor.ok("GET", f"/webhook-deliveries/{replay['id']}")["status"] == "delivered"


# --- secrets -------------------------------------------------------------------------------


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(vendors, deliverer):
    vendor = vendors.create()
    old_only, new_only = WebhookReceiver().start(), WebhookReceiver().start()
    try:
        endpoint = register(vendor, old_only, event_types=["license.suspended"])
        rotated = vendor.ok(
            "POST",
            f"/webhook-endpoints/{endpoint['id']}/actions/rotate-secret",
            json={"overlap_seconds": 3600},
        )
        assert rotated["secret"] != endpoint["secret"]
        new_only.secrets.append(rotated["secret"])
        vendor.ok("POST", "/webhook-endpoints", json={"url": new_only.url})  # a second one
        vendor.ok("PATCH", f"/webhook-endpoints/{endpoint['id']}", json={"url": new_only.url})
        (license_id,) = licenses_of(vendor, 1)
        suspend(vendor, license_id)
        deliverer.deliver_due()
        assert new_only.types() == ["license.suspended"]  # signed with the new secret too

        vendor.ok("PATCH", f"/webhook-endpoints/{endpoint['id']}", json={"url": old_only.url})
        vendor.ok(
            "POST",
            f"/webhook-endpoints/{endpoint['id']}/actions/rotate-secret",
            json={"overlap_seconds": 0},
        )
        suspend(vendor, license_id, "resume")
        suspend(vendor, license_id)
        deliverer.deliver_due()
        assert old_only.types() == []  # the first secret signs no more
        assert old_only.refused == 1
    finally:
        old_only.stop()
        new_only.stop()


def test_the_secret_is_shown_once_and_never_listed(vendors, receiver):
    vendor = vendors.create()
    endpoint = register(vendor, receiver)
    assert endpoint["secret"].startswith("whsec_")
    listed = vendor.ok("GET", "/webhook-endpoints")["items"]
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in vendor.ok("GET", f"/webhook-endpoints/{endpoint['id']}")
    assert endpoint["secret"] not in json.dumps(vendor.ok("GET", "/audit-events")["items"])


# --- bad input and permissions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"url": "https://erp.example/hooks", "event_types": ["license.teleported"]},
            "UNKNOWN_EVENT_TYPE",
        ),
        ({"url": "https://erp.example/hooks", "event_types": []}, "VALIDATION_FAILED"),
        ({"url": "ftp://erp.example/hooks"}, "VALIDATION_FAILED"),
    ],
)
def test_a_bad_endpoint_is_refused_with_a_problem(vendors, body, code):
    vendor = vendors.create()
    response = vendor.post("/webhook-endpoints", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert vendor.ok("GET", "/webhook-endpoints")["items"] == []


def test_only_credentials_with_the_webhook_scopes_manage_endpoints(vendors, receiver):
    vendor = vendors.create()
    reader = vendor.new_api_key(["webhooks:read"])
    denied = vendor.post("/webhook-endpoints", token=reader, json={"url": receiver.url})
    assert denied.status_code == 403
    assert denied.json()["code"] == "FORBIDDEN"
    endpoint = register(vendor, receiver)
    assert vendor.request("GET", f"/webhook-endpoints/{endpoint['id']}", token=reader).is_success
    sales = vendor.user_token("sales")
    assert vendor.request("GET", "/webhook-endpoints", token=sales).status_code == 403
    other = vendors.create()
    assert other.get(f"/webhook-endpoints/{endpoint['id']}").status_code == 404
    assert vendor.request("DELETE", f"/webhook-endpoints/{endpoint['id']}").status_code == 204
    assert vendor.get(f"/webhook-endpoints/{endpoint['id']}").status_code == 404


# --- the job ------------------------------------------------------------------------------


def test_licentia_serve_delivers_in_the_background(settings, database, master, vendors, receiver):
    background = settings.model_copy(update={"webhook_poll_seconds": 0.05})
    app = create_app(background, database=database, master=master)
    vendor = vendors.create()
    register(vendor, receiver, event_types=["license.suspended"])
    (license_id,) = licenses_of(vendor, 1)
    with TestClient(app):
        suspend(vendor, license_id)
        deadline = utcnow() + timedelta(seconds=60)
        while not receiver.received and utcnow() < deadline:
            threading.Event().wait(0.05)
    assert receiver.types() == ["license.suspended"]


def test_an_event_the_server_commits_is_delivered_without_waiting_for_the_poll(
    settings, database, master, vendors, receiver
):
    # the next poll would come in an hour: the commit itself wakes the delivery loop
    hourly = settings.model_copy(update={"webhook_poll_seconds": 3600})
    app = create_app(hourly, database=database, master=master)
    vendor = vendors.create()
    register(vendor, receiver, event_types=["license.suspended"])
    first, second = licenses_of(vendor, 2)
    suspend(vendor, first)  # before the server starts: its first round delivers it

    def arrived(count: int) -> None:
        deadline = utcnow() + timedelta(seconds=60)
        while len(receiver.received) < count and utcnow() < deadline:
            threading.Event().wait(0.05)

    with TestClient(app):
        arrived(1)  # the first round has fanned out: a later event needs a new round
        suspend(vendor, second)
        arrived(2)
    assert [r.payload["data"]["id"] for r in receiver.received] == [first, second]


def test_two_workers_on_postgresql_claim_different_deliveries(
    backend, vendors, receiver, database, deliverer, settings
):
    if backend != "postgresql":
        pytest.skip("SQLite has no row locks to skip: one process delivers")
    vendor = vendors.create()
    register(vendor, receiver, event_types=["license.suspended"])
    for license_id in licenses_of(vendor, 30):
        suspend(vendor, license_id)
    with database.transaction() as session:
        fan_out(session)
    now = utcnow()
    with database.transaction() as first, database.transaction() as second:
        mine = claim(first, "worker-1", now, timedelta(minutes=5), limit=10)
        theirs = claim(second, "worker-2", now, timedelta(minutes=5), limit=10)
        assert mine and theirs  # the second worker did not wait for the first's rows
        assert not {c.delivery_id for c in mine} & {c.delivery_id for c in theirs}

    with delivery_client(settings.webhook_targets, timeout=10) as http:
        other = Deliverer(database, deliverer.master, http, clock=lambda: now + timedelta(hours=1))
        workers = [threading.Thread(target=w.deliver_due) for w in (other, deliverer)]
        deliverer.clock = other.clock
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    ids = [r.webhook_id for r in receiver.received]
    assert len(ids) == len(set(ids)) == 30


def test_on_postgresql_an_event_another_node_writes_wakes_the_delivery(
    backend, settings, database, database_url, master, vendors, receiver
):
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite serves one process")
    # the next poll would come in an hour, and the other node's commits wake nothing
    # in this process (another engine): only the notification can
    hourly = settings.model_copy(update={"webhook_poll_seconds": 3600})
    app = create_app(hourly, database=database, master=master)
    vendor = vendors.create()
    register(vendor, receiver, event_types=["license.suspended"])
    (license_id,) = licenses_of(vendor, 1)
    actor = Actor(ActorKind.API_KEY, "test", vendor.id, frozenset(SCOPES))
    other_node = connect(database_url, pool_size=1)
    try:
        before = listeners(database)
        with TestClient(app):
            wait_for(lambda: listeners(database) > before)
            with other_node.transaction() as session:
                change_state(session, actor, license_id, "suspend")
            wait_for(lambda: bool(receiver.received))
    finally:
        other_node.dispose()
    assert receiver.types() == ["license.suspended"]
