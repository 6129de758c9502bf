"""The events of devices, seats and unit counters: each real action writes exactly one
event in its own transaction, which reaches a receiver shaped as its JSON Schema says.

seat.denied is sent at most once per pool and minute (docs/integrations.md): tests
count the minutes the denials fell in rather than hoping they share one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from sqlalchemy import select

from licentia.domain.webhooks import SEAT_DENIED_WINDOW_SECONDS
from licentia.server.db.base import utcnow
from licentia.server.seats import services as seats
from licentia.server.seats.models import SeatEvent
from licentia.server.webhooks.delivery import Deliverer
from licentia.server.webhooks.egress import delivery_client
from licentia.server.webhooks.models import WebhookEvent
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice
from tests.integration.test_cloud import CloudUser
from tests.support.webhook_receiver import WebhookReceiver

SCHEMAS = Path(__file__).parents[2] / "docs" / "webhook-events"
JOSE = {"Content-Type": "application/jose"}


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


@pytest.fixture
def deliver(database, master, settings) -> Iterator[Any]:
    with delivery_client(settings.webhook_targets, timeout=10) as http:
        yield Deliverer(database, master, http).deliver_due


def listen(vendor: VendorHandle, receiver: WebhookReceiver, *event_types: str) -> None:
    body = {"url": receiver.url, "event_types": list(event_types)}
    receiver.secrets.append(vendor.ok("POST", "/webhook-endpoints", json=body)["secret"])


def events_of(database, vendor: VendorHandle, event_type: str) -> list[WebhookEvent]:
    with database.read() as session:
        return list(
            session.scalars(
                select(WebhookEvent)
                .where(WebhookEvent.vendor_id == vendor.id, WebhookEvent.type == event_type)
                .order_by(WebhookEvent.seq)
            )
        )


def conform(receiver: WebhookReceiver) -> None:
    for got in receiver.received:
        schema = json.loads((SCHEMAS / f"{got.payload['type']}.schema.json").read_text())
        jsonschema.validate(got.payload, schema)


def cloud_user(vendor: VendorHandle, **options: Any) -> tuple[CloudUser, str]:
    template = vendor.template(options)
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    redeemed = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/redeem", json={"ticket": order["ticket_code"]}
    )
    assert redeemed.status_code == 201, redeemed.text
    license_id = redeemed.json()["license_ids"][0]
    return CloudUser(vendor, redeemed.json()["credential"]), license_id


def product_of(vendor: VendorHandle, license_id: str) -> str:
    return str(vendor.ok("GET", f"/licenses/{license_id}")["product_code"])


# --- devices ------------------------------------------------------------------------------


def activated_device(vendor: VendorHandle) -> tuple[BareDevice, str]:
    template = vendor.template({"delivery": "device"})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    device = BareDevice(vendor.slug)
    path = f"/api/v1/vendors/{vendor.slug}/devices/activate"
    answer = vendor.client.post(path, content=device.request("activate", code), headers=JOSE)
    assert answer.status_code == 200, answer.text
    (listed,) = vendor.ok("GET", "/devices")["items"]
    device.seq = listed["seq"]
    return device, str(listed["id"])


def test_a_device_replaying_a_state_is_flagged_with_one_event(vendors, receiver, deliver, database):
    vendor = vendors.create()
    listen(vendor, receiver, "device.flagged")
    device, device_id = activated_device(vendor)
    path = f"/api/v1/vendors/{vendor.slug}/devices/sync"
    device.seq += 1  # a sequence the server never issued: flagged
    answer = vendor.client.post(path, content=device.request("sync"), headers=JOSE)
    assert (answer.status_code, answer.json()["code"]) == (409, "DEVICE_FLAGGED")
    device.seq -= 1  # an honest sync now is held by the flag: no second flag, no event
    answer = vendor.client.post(path, content=device.request("sync"), headers=JOSE)
    assert (answer.status_code, answer.json()["code"]) == (403, "DEVICE_FLAGGED")
    (event,) = events_of(database, vendor, "device.flagged")
    assert event.object_id == device_id
    assert vendor.ok("GET", f"/devices/{device_id}")["flags"] == ["replay_suspected"]
    deliver()
    assert receiver.types() == ["device.flagged"]
    conform(receiver)
    data = receiver.received[0].payload["data"]
    assert (data["id"], data["kind"]) == (device_id, "replay_suspected")
    assert "sequence" in data["detail"]


def test_a_blacklisted_device_sends_one_event(vendors, receiver, deliver, database):
    vendor = vendors.create()
    listen(vendor, receiver, "device.blacklisted", "device.flagged")
    _device, device_id = activated_device(vendor)
    vendor.ok("POST", f"/devices/{device_id}/actions/blacklist", json={})
    assert len(events_of(database, vendor, "device.blacklisted")) == 1
    deliver()
    assert receiver.types() == ["device.blacklisted"]
    conform(receiver)
    assert receiver.received[0].payload["data"] == {"id": device_id, "status": "blacklisted"}


# --- seats --------------------------------------------------------------------------------


def denial_windows(database, license_id: str) -> set[int]:
    with database.read() as session:
        times = session.scalars(
            select(SeatEvent.at).where(SeatEvent.license_id == license_id, SeatEvent.kind == "deny")
        ).all()
    return {int(at.timestamp()) // SEAT_DENIED_WINDOW_SECONDS for at in times}


def test_racing_refused_checkouts_send_one_seat_denied_per_pool_and_minute(
    vendors, receiver, deliver, database
):
    vendor = vendors.create()
    listen(vendor, receiver, "seat.denied")
    user, license_id = cloud_user(vendor, delivery="seat_pool", seats=1)
    product = product_of(vendor, license_id)
    assert user.checkout(product, "ann").status_code == 201
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: user.checkout(product, f"user-{n}"), range(16)))
    assert {a.json()["code"] for a in answers} == {"NO_SEAT_AVAILABLE"}
    events = events_of(database, vendor, "seat.denied")
    windows = denial_windows(database, license_id)
    assert len(events) == len(windows) and 1 <= len(windows) <= 2
    deliver()
    conform(receiver)
    data = receiver.received[0].payload["data"]
    assert (data["id"], data["in_use"], data["seats"]) == (license_id, 1, 1)
    assert data["holder_key"].startswith("u:user-")


def test_a_denial_rolled_back_sends_nothing(vendors, database):
    vendor = vendors.create()
    _user, license_id = cloud_user(vendor, delivery="seat_pool", seats=1)
    denied = seats.Denied(license_id, vendor.id, "u:zoe", 1, 1)
    with pytest.raises(RuntimeError), database.transaction() as session:
        seats.record_denial(session, denied, utcnow())
        raise RuntimeError("the unit of work fails after the denial")
    assert events_of(database, vendor, "seat.denied") == []
    assert denial_windows(database, license_id) == set()


# --- unit counters ------------------------------------------------------------------------


def test_a_counter_sends_units_low_once_and_units_exhausted_once(
    vendors, receiver, deliver, database
):
    vendor = vendors.create()
    listen(vendor, receiver, "units.low", "units.exhausted")
    user, license_id = cloud_user(vendor, delivery="cloud", units=100)  # low under 10
    product = product_of(vendor, license_id)
    balances = []
    for n, units in enumerate((85, 6, 5, 4, 1)):
        answer = user.consume(product, units, f"job-{n}")
        balances.append(answer.json().get("balance_after", answer.json().get("code")))
    assert balances == [15, 9, 4, 0, "UNITS_EXHAUSTED"]
    (low,) = events_of(database, vendor, "units.low")
    (exhausted,) = events_of(database, vendor, "units.exhausted")
    assert low.seq < exhausted.seq
    deliver()
    assert receiver.types() == ["units.low", "units.exhausted"]
    conform(receiver)
    assert receiver.received[0].payload["data"] == {"id": license_id, "balance": 9, "threshold": 10}
    assert receiver.received[1].payload["data"] == {"id": license_id, "balance": 0}


def test_a_top_up_makes_the_next_crossing_send_again(vendors, database):
    vendor = vendors.create()
    user, license_id = cloud_user(vendor, delivery="cloud", units=10)  # low under 1
    product = product_of(vendor, license_id)
    assert user.consume(product, 10, "all").json()["balance_after"] == 0
    vendor.ok("POST", f"/licenses/{license_id}/units/top-up", json={"units": 3})
    assert user.consume(product, 3, "again").json()["balance_after"] == 0
    assert len(events_of(database, vendor, "units.low")) == 2
    assert len(events_of(database, vendor, "units.exhausted")) == 2


# --- orders taken back by the ERP ---------------------------------------------------------


def test_a_cancellation_and_a_return_each_send_one_event_written_after_their_licenses(
    vendors, receiver, deliver, database
):
    vendor = vendors.create()
    order_events = ("order.cancelled", "order.returned", "license.withdrawn")
    listen(vendor, receiver, *order_events)
    sku = vendor.template()["sku"]
    order = vendor.order([{"sku": sku, "quantity": 3, "line_id": "10"}], external_order_id="ERP-77")
    path = f"/orders/{order['id']}/actions"
    body = {"return_id": "RMA-1", "lines": [{"line_id": "10", "quantity": 1}]}
    for _ in range(2):  # sent again: a replay, no second event
        vendor.ok("POST", f"{path}/return", json=body)
        vendor.ok("POST", f"{path}/cancel", json={})
    (returned_event,) = events_of(database, vendor, "order.returned")
    (cancelled_event,) = events_of(database, vendor, "order.cancelled")
    assert returned_event.object_id == cancelled_event.object_id == order["id"]
    withdrawn = [e.seq for e in events_of(database, vendor, "license.withdrawn")]
    assert len(withdrawn) == 3  # one license returned, then the other two cancelled
    assert withdrawn[0] < returned_event.seq < withdrawn[1] < withdrawn[2] < cancelled_event.seq
    deliver()
    assert sorted(receiver.types()) == sorted(order_events + ("license.withdrawn",) * 2)
    conform(receiver)
    # the order's own events arrive in order; other objects' may come between them
    returned, cancelled = (
        got.payload["data"] for got in receiver.received if got.payload["type"].startswith("order.")
    )
    assert returned == {
        "id": order["id"],
        "external_order_id": "ERP-77",
        "return_id": "RMA-1",
        "activated": "withdraw",
        "withdrawn": 1,
        "suspended": 0,
        "refused": 0,
    }
    assert (cancelled["return_id"], cancelled["withdrawn"]) == (None, 2)


def test_a_return_refused_whole_sends_no_event(vendors, database):
    vendor = vendors.create()
    order = vendor.order([{"sku": vendor.template()["sku"], "quantity": 1, "line_id": "1"}])
    body = {"return_id": "RMA-2", "lines": [{"line_id": "1", "quantity": 5}]}
    refused = vendor.post(f"/orders/{order['id']}/actions/return", json=body)
    assert (refused.status_code, refused.json()["code"]) == (409, "RETURN_EXCEEDS_LINE")
    assert events_of(database, vendor, "order.returned") == []
