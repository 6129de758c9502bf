"""The device protocol on the wire: activation, sync, offline files, receipts, returns."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from licentia.formats.device import unverified_claims
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice

JOSE = {"Content-Type": "application/jose"}


def _send(vendor: VendorHandle, path: str, token: str, **headers: str):
    return vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/{path}", content=token, headers={**JOSE, **headers}
    )


def _ticket(vendor: VendorHandle, quantity: int = 1, **options) -> tuple[str, dict]:
    template = vendor.template(options)
    order = vendor.order([{"sku": template["sku"], "quantity": quantity}])
    return order["ticket_code"], order


def _apply(device: BareDevice, response) -> dict:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jose")
    claims = dict(unverified_claims(response.text))
    device.seq, device.state = claims["seq"], claims["state"]
    return claims


def test_a_device_activates_a_ticket_and_receives_a_bound_license(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor)
    device = BareDevice(vendor.slug)
    update = _apply(device, _send(vendor, "activate", device.request("activate", code)))
    assert update["aud"] == device.id and update["seq"] == 1
    (document,) = update["licenses"]
    license_claims = unverified_claims(document)
    assert license_claims["aud"] == device.id
    assert license_claims["lease_until"] >= license_claims["exp"]
    license_id = license_claims["sub"]
    assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "activated"


def test_activating_again_is_idempotent_and_consumes_nothing_more(vendors):
    vendor = vendors.create()
    code, order = _ticket(vendor, quantity=2)
    device = BareDevice(vendor.slug)
    first = _apply(device, _send(vendor, "activate", device.request("activate", code)))
    again = _apply(device, _send(vendor, "activate", device.request("activate", code)))
    assert len(first["licenses"]) == len(again["licenses"]) == 1
    ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    states = [vendor.ok("GET", f"/licenses/{i}")["state"] for i in ticket["license_ids"]]
    assert sorted(states) == ["activated", "available"]


def test_twenty_devices_racing_for_one_license_exactly_one_wins(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor)
    racers = [BareDevice(vendor.slug) for _ in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(
            pool.map(
                lambda d: _send(vendor, "activate", d.request("activate", code)).status_code, racers
            )
        )
    assert statuses.count(200) == 1
    assert statuses.count(409) == 19


def test_sync_without_changes_is_not_modified_and_a_withdrawal_removes_the_license(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor)
    device = BareDevice(vendor.slug)
    update = _apply(device, _send(vendor, "activate", device.request("activate", code)))
    license_id = unverified_claims(update["licenses"][0])["sub"]
    unchanged = _send(vendor, "sync", device.request("sync"), **{"If-None-Match": "*"})
    assert unchanged.status_code == 304
    vendor.ok("POST", f"/licenses/{license_id}/actions/withdraw")
    after = _apply(device, _send(vendor, "sync", device.request("sync"), **{"If-None-Match": "*"}))
    assert after["licenses"] == [] and after["removed"] == [license_id]


def test_an_offline_round_trip_confirms_and_a_mismatched_receipt_flags_the_device(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor)
    device = BareDevice(vendor.slug)
    update = _apply(device, _send(vendor, "offline", device.request("offline", code)))
    ok = _send(vendor, "receipts", device.receipt(update["seq"], update["state"]))
    assert ok.status_code == 200 and ok.json() == {"confirmed": 1}
    bad = _send(vendor, "receipts", device.receipt(update["seq"], "not-the-state"))
    assert bad.status_code == 409 and bad.json()["code"] == "RECEIPT_MISMATCH"
    refused = _send(vendor, "sync", device.request("sync"))
    assert refused.json()["code"] == "DEVICE_FLAGGED"


def test_a_copied_device_key_on_other_hardware_is_flagged(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor)
    device = BareDevice(vendor.slug)
    _apply(device, _send(vendor, "activate", device.request("activate", code)))
    device.fingerprint = {name: "f" * 64 for name in device.fingerprint}
    response = _send(vendor, "sync", device.request("sync"))
    assert response.status_code == 403 and response.json()["code"] == "FINGERPRINT_MISMATCH"
    devices = vendor.ok("GET", "/devices")["items"]
    assert devices[0]["flags"] == ["clone_suspected"]


def test_a_returned_license_can_be_activated_elsewhere_within_the_transfer_limit(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor, transfer_limit={"returns": 1, "period_days": 30})
    first, second = BareDevice(vendor.slug), BareDevice(vendor.slug)
    update = _apply(first, _send(vendor, "activate", first.request("activate", code)))
    license_id = unverified_claims(update["licenses"][0])["sub"]
    returned = _send(vendor, "returns", first.return_proof(license_id))
    assert returned.json() == {"license": license_id, "state": "returned"}
    _apply(second, _send(vendor, "activate", second.request("activate", code)))
    limited = _send(vendor, "returns", second.return_proof(license_id))
    assert limited.status_code == 409 and limited.json()["code"] == "TRANSFER_LIMIT_REACHED"


def test_a_blacklisted_device_sync_removes_its_licenses_and_it_cannot_activate(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor)
    device = BareDevice(vendor.slug)
    _apply(device, _send(vendor, "activate", device.request("activate", code)))
    (listed,) = vendor.ok("GET", "/devices")["items"]
    vendor.ok("POST", f"/devices/{listed['id']}/actions/blacklist")
    update = _apply(device, _send(vendor, "sync", device.request("sync")))
    assert update["licenses"] == [] and update["status"] == "blacklisted"
    again = _send(vendor, "activate", device.request("activate", code))
    assert again.json()["code"] == "DEVICE_BLACKLISTED"


def test_a_vm_is_refused_when_the_template_denies_it(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor, vm_policy="deny")
    device = BareDevice(vendor.slug, vm=True)
    response = _send(vendor, "activate", device.request("activate", code))
    assert response.status_code == 403 and response.json()["code"] == "VM_NOT_ALLOWED"


def test_a_forged_signature_is_refused(vendors):
    vendor = vendors.create()
    code, _ = _ticket(vendor)
    device = BareDevice(vendor.slug)
    token = device.request("activate", code)
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{'A' * len(signature)}"
    response = _send(vendor, "activate", forged)
    assert response.status_code == 401 and response.json()["code"] == "SIGNATURE_INVALID"
