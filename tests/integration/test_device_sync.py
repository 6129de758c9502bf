"""Conditional syncs: a current device gets 304 from a read, every other case the full
sync, so replay, clone and flag checks, confirmations and lease renewals still hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from licentia.formats.device import unverified_claims
from licentia.server.devices.models import Device
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice

JOSE = {"Content-Type": "application/jose"}
CONDITIONAL = {**JOSE, "If-None-Match": "*"}


def _activated(vendor: VendorHandle, **options) -> tuple[BareDevice, dict]:
    template = vendor.template({"delivery": "device", **options})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    device = BareDevice(vendor.slug)
    answer = _post(vendor, "activate", device.request("activate", code))
    assert answer.status_code == 200, answer.text
    claims = unverified_claims(answer.text)
    device.seq, device.state = claims["seq"], claims["state"]
    (listed,) = vendor.ok("GET", "/devices")["items"]
    return device, listed


def _post(vendor: VendorHandle, path: str, token: str, headers: dict[str, str] = JOSE):
    return vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/{path}", content=token, headers=headers
    )


def _sync(vendor: VendorHandle, device: BareDevice):
    return _post(vendor, "sync", device.request("sync"), CONDITIONAL)


def test_an_unchanged_sync_confirms_the_update_and_records_the_visit(vendors):
    vendor = vendors.create()
    device, listed = _activated(vendor)
    assert listed["confirmed_seq"] == 0 and listed["last_seen_at"] is None
    first = _sync(vendor, device)
    assert first.status_code == 304 and first.headers["ETag"] == f'"{device.state}"'
    seen = vendor.ok("GET", f"/devices/{listed['id']}")
    assert seen["confirmed_seq"] == 1 and seen["last_seen_at"] is not None
    assert _sync(vendor, device).status_code == 304
    again = vendor.ok("GET", f"/devices/{listed['id']}")
    assert again["last_seen_at"] == seen["last_seen_at"]  # kept to the minute
    assert again["seq"] == 1  # nothing was issued


def test_a_device_holding_another_state_gets_an_update(vendors):
    vendor = vendors.create()
    device, _ = _activated(vendor)
    device.state = "a-state-never-issued"
    answer = _sync(vendor, device)
    assert answer.status_code == 200 and answer.headers["X-Licentia-Seq"] == "2"


def test_a_conditional_sync_renews_a_lease_that_is_due(vendors):
    vendor = vendors.create()
    device, listed = _activated(vendor, refresh_days=7)
    assert _sync(vendor, device).status_code == 304
    with vendor.database.transaction() as session:
        renewed = datetime.now(UTC) - timedelta(days=8)
        session.execute(
            update(Device).where(Device.id == listed["id"]).values(lease_renewed_at=renewed)
        )
    answer = _sync(vendor, device)
    assert answer.status_code == 200 and answer.headers["X-Licentia-Seq"] == "2"


def test_a_conditional_sync_from_other_hardware_is_flagged_and_stays_refused(vendors):
    vendor = vendors.create()
    device, listed = _activated(vendor)
    assert _sync(vendor, device).status_code == 304
    recorded = dict(device.fingerprint)
    device.fingerprint = {name: "f" * 64 for name in recorded}
    clone = _sync(vendor, device)
    assert clone.status_code == 403 and clone.json()["code"] == "FINGERPRINT_MISMATCH"
    device.fingerprint = recorded
    held = _sync(vendor, device)
    assert held.status_code == 403 and held.json()["code"] == "DEVICE_FLAGGED"
    assert vendor.ok("GET", f"/devices/{listed['id']}")["flags"] == ["clone_suspected"]


def test_a_conditional_sync_claiming_a_sequence_never_issued_is_flagged(vendors):
    vendor = vendors.create()
    device, listed = _activated(vendor)
    device.seq += 1
    replay = _sync(vendor, device)
    assert replay.status_code == 409 and replay.json()["code"] == "DEVICE_FLAGGED"
    assert vendor.ok("GET", f"/devices/{listed['id']}")["flags"] == ["replay_suspected"]


def test_a_blacklisted_device_gets_the_removal_even_when_it_asks_conditionally(vendors):
    vendor = vendors.create()
    device, listed = _activated(vendor)
    assert _sync(vendor, device).status_code == 304
    vendor.ok("POST", f"/devices/{listed['id']}/actions/blacklist")
    answer = _sync(vendor, device)
    assert answer.status_code == 200
    claims = unverified_claims(answer.text)
    assert claims["status"] == "blacklisted" and claims["licenses"] == []


def test_an_unknown_device_and_a_forged_request_are_refused_as_before(vendors):
    vendor = vendors.create()
    stranger = _sync(vendor, BareDevice(vendor.slug))
    assert stranger.status_code == 404 and stranger.json()["code"] == "DEVICE_UNKNOWN"
    device, _ = _activated(vendor)
    head, payload, signature = device.request("sync").split(".")
    forged = _post(vendor, "sync", f"{head}.{payload}.{'A' * len(signature)}", CONDITIONAL)
    assert forged.status_code == 401 and forged.json()["code"] == "SIGNATURE_INVALID"
