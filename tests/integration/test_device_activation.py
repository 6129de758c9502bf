"""Online activation binds licenses in single conditional statements: what a vendor
sees on the license afterwards (state, version, activation time, validity)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from licentia.formats.device import unverified_claims
from licentia.server.licenses.models import License
from tests.factories import VendorHandle
from tests.integration.device_messages import BareDevice, activate_device

JOSE = {"Content-Type": "application/jose"}


def _activate(vendor: VendorHandle, device: BareDevice, code: str) -> dict:
    answer = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=device.request("activate", code),
        headers=JOSE,
    )
    assert answer.status_code == 200, answer.text
    claims = dict(unverified_claims(answer.text))
    device.seq, device.state = claims["seq"], claims["state"]
    return claims


def _license_of(update: dict) -> str:
    (document,) = update["licenses"]
    return str(unverified_claims(document)["sub"])


def test_a_license_valid_for_days_from_activation_starts_counting_once(vendors):
    vendor = vendors.create()
    validity = {"kind": "days_from_activation", "days": 30}
    template = vendor.template({"delivery": "device", "validity": validity})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    first = BareDevice(vendor.slug)
    license_id = _license_of(_activate(vendor, first, code))
    activated = vendor.ok("GET", f"/licenses/{license_id}")
    assert activated["state"] == "activated" and activated["version"] == 2
    started = datetime.fromisoformat(activated["activated_at"])
    until = datetime.fromisoformat(activated["valid_until"])
    assert until - started == timedelta(days=30)
    returned = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/returns",
        content=first.return_proof(license_id),
        headers=JOSE,
    )
    assert returned.status_code == 200, returned.text
    _activate(vendor, BareDevice(vendor.slug), code)
    again = vendor.ok("GET", f"/licenses/{license_id}")
    assert again["activated_at"] == activated["activated_at"]
    assert again["valid_until"] == activated["valid_until"]  # moving it does not restart it


def test_a_device_activating_a_second_ticket_keeps_the_first_license(vendors):
    vendor = vendors.create()
    codes = []
    for _ in range(2):
        template = vendor.template({"delivery": "device"})
        codes.append(vendor.order([{"sku": template["sku"], "quantity": 2}])["ticket_code"])
    device = BareDevice(vendor.slug)
    first = _license_of(_activate(vendor, device, codes[0]))
    update = _activate(vendor, device, codes[1])
    held = {unverified_claims(document)["sub"] for document in update["licenses"]}
    assert first in held and len(held) == 2 and update["seq"] == 2
    again = _activate(vendor, device, codes[0])  # idempotent: takes no second license
    assert {unverified_claims(d)["sub"] for d in again["licenses"]} == held


def test_activating_a_ticket_whose_licenses_have_expired_says_they_expired(vendors):
    vendor = vendors.create()
    template = vendor.template({"delivery": "device"})
    order = vendor.order([{"sku": template["sku"], "quantity": 2}])
    license_ids = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    with vendor.database.transaction() as session:  # their end lies behind us now
        session.execute(
            update(License)
            .where(License.id.in_(license_ids))
            .values(valid_until=datetime.now(UTC) - timedelta(days=1))
        )
    answer = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=BareDevice(vendor.slug).request("activate", order["ticket_code"]),
        headers=JOSE,
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["code"] == "EXPIRED"
    assert "expired" in answer.json()["detail"]
    assert {vendor.ok("GET", f"/licenses/{i}")["state"] for i in license_ids} == {"expired"}


def test_a_license_says_which_device_holds_it(vendors):
    vendor = vendors.create()
    template = vendor.template({"delivery": "device"})
    order = vendor.order([{"sku": template["sku"], "quantity": 2}])
    device_id = activate_device(vendor, order["ticket_code"])
    ids = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    holders = [vendor.ok("GET", f"/licenses/{i}")["device_id"] for i in ids]
    assert sorted(holders, key=str) == sorted([device_id, None], key=str)
    listed = vendor.ok("GET", "/licenses", params={"ticket_id": order["ticket_id"]})["items"]
    assert {item["device_id"] for item in listed} == {device_id, None}
