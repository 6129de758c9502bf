"""Push updates, server side: which containers a committed change announces, to
whom, and who may open a stream. The streams themselves run against a real server
in tests/e2e/test_push_updates.py (a test client buffers a whole answer)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from licentia.server.db.engine import Database, conninfo
from licentia.server.push import changes
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice

JOSE = {"Content-Type": "application/jose"}
TIME_LIMITED = {"delivery": "device", "validity": {"kind": "days_from_issue", "days": 30}}


@pytest.fixture
def announced(database: Database) -> Iterator[list[frozenset[str]]]:
    """The addresses of every transaction this process commits meanwhile."""
    seen: list[frozenset[str]] = []
    forget = changes.on_commit(database.write_engine, seen.append)
    yield seen
    forget()


def _activated(vendor: VendorHandle, options: dict | None = None) -> tuple[BareDevice, str, str]:
    """A bare device holding one license: the device, its id, the license id."""
    template = vendor.template(options or TIME_LIMITED)
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    device = BareDevice(vendor.slug)
    answer = _post(vendor, "devices/activate", device.request("activate", code))
    assert answer.status_code == 200, answer.text
    (listed,) = vendor.ok("GET", "/devices")["items"]
    return device, listed["id"], listed["license_ids"][0]


def _post(vendor: VendorHandle, path: str, token: str, headers: dict[str, str] = JOSE):
    return vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/{path}", content=token, headers=headers
    )


def _mentioning(seen: list[frozenset[str]], address: str) -> int:
    return sum(address in addresses for addresses in seen)


def test_a_vendors_change_announces_the_device_that_holds_the_license(vendors, announced):
    vendor = vendors.create()
    _, device_id, license_id = _activated(vendor)
    before = _mentioning(announced, f"d:{device_id}")

    vendor.ok("POST", f"/licenses/{license_id}/actions/extend", json={"days": 5})
    vendor.ok("POST", f"/licenses/{license_id}/actions/withdraw", json={})

    assert _mentioning(announced, f"d:{device_id}") == before + 2


def test_a_refused_change_announces_nothing(vendors, announced):
    vendor = vendors.create()
    _, device_id, license_id = _activated(vendor, {"delivery": "device"})  # perpetual
    before = _mentioning(announced, f"d:{device_id}")

    refused = vendor.post(f"/licenses/{license_id}/actions/extend", json={"days": 5})

    assert refused.status_code == 409
    assert _mentioning(announced, f"d:{device_id}") == before


def test_an_order_that_only_issues_licenses_announces_no_container(vendors, announced):
    vendor = vendors.create()
    template = vendor.template(TIME_LIMITED)
    before = len(announced)
    vendor.order([{"sku": template["sku"], "quantity": 50}])
    assert len(announced) == before


def test_a_cloud_containers_license_change_announces_the_container(vendors, announced, client):
    vendor = vendors.create()
    template = vendor.template({"delivery": "cloud", **{"validity": TIME_LIMITED["validity"]}})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    redeemed = client.post(f"/api/v1/vendors/{vendor.slug}/cloud/redeem", json={"ticket": code})
    assert redeemed.status_code == 201, redeemed.text
    container, (license_id,) = redeemed.json()["container_id"], redeemed.json()["license_ids"]
    before = _mentioning(announced, f"c:{container}")

    vendor.ok("POST", f"/licenses/{license_id}/actions/suspend", json={})

    assert _mentioning(announced, f"c:{container}") == before + 1


def test_on_postgresql_other_nodes_hear_of_the_change_by_notify(vendors, database, backend):
    if backend != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite serves one process")
    vendor = vendors.create()
    _, device_id, license_id = _activated(vendor)
    url = database.write_engine.url.render_as_string(hide_password=False)
    with psycopg.connect(conninfo(url), autocommit=True) as other_node:
        other_node.execute(f"LISTEN {changes.CHANNEL}")
        vendor.ok("POST", f"/licenses/{license_id}/actions/extend", json={"days": 5})
        heard: set[str] = set()
        for notification in other_node.notifies(timeout=30, stop_after=50):
            node, addresses = changes.decode(notification.payload)
            heard |= addresses
            if f"d:{device_id}" in heard:
                break
        assert node == changes.NODE  # sent by this process (another node would relay it)
    assert f"d:{device_id}" in heard


def test_payloads_stay_within_postgresqls_limit_and_decode_to_what_was_sent():
    addresses = {f"d:{n:036d}" for n in range(1000)}
    payloads = changes.encode(addresses)
    assert len(payloads) > 1 and all(len(p.encode()) < 8000 for p in payloads)
    decoded: set[str] = set()
    for payload in payloads:
        decoded |= changes.decode(payload)[1]
    assert decoded == addresses


# --- opening a stream: who may -------------------------------------------------------------


def test_a_stream_needs_a_listen_request_of_a_device_this_vendor_knows(vendors):
    vendor, other = vendors.create(), vendors.create()
    device, _, _ = _activated(vendor)

    wrong_op = _post(vendor, "devices/events", device.request("sync"))
    assert wrong_op.status_code == 422 and wrong_op.json()["field"] == "op"

    stranger = BareDevice(other.slug, key=device.key, enc=device.enc)
    unknown = _post(other, "devices/events", stranger.request("listen"))
    assert unknown.status_code == 404 and unknown.json()["code"] == "DEVICE_NOT_FOUND"

    forged = _post(vendor, "devices/events", device.request("listen")[:-4] + "AAAA")
    assert forged.status_code == 401 and forged.json()["code"] == "SIGNATURE_INVALID"


def test_a_blacklisted_device_gets_no_stream(vendors):
    vendor = vendors.create()
    device, device_id, _ = _activated(vendor)
    vendor.ok("POST", f"/devices/{device_id}/actions/blacklist")

    refused = _post(vendor, "devices/events", device.request("listen"))

    assert refused.status_code == 403 and refused.json()["code"] == "DEVICE_BLACKLISTED"


def test_a_cloud_stream_needs_the_device_token(vendors, client):
    vendor = vendors.create()
    missing = client.post(f"/api/v1/vendors/{vendor.slug}/cloud/events")
    assert missing.status_code == 401
    wrong = client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/events",
        headers={"Authorization": "Bearer lcd_not-a-token"},
    )
    assert wrong.status_code == 401
