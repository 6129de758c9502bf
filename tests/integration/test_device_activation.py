"""Online activation binds licenses in single conditional statements: what a vendor
sees on the license afterwards (state, version, activation time, validity), what the
device gets, and the refusals. The claim is one statement on PostgreSQL and one per
template on SQLite: every test here runs on both, so the two agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from joserfc import jwe
from joserfc.jwk import OKPKey
from sqlalchemy import update

from licentia.formats.device import unverified_claims
from licentia.formats.tickets import generate_ticket_code
from licentia.server.activation.documents import SECRET_ALGORITHMS
from licentia.server.licenses.models import License
from tests.factories import VendorHandle
from tests.integration.device_messages import FACTORS, BareDevice, activate_device

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


def _documents(update: dict) -> dict[str, dict]:
    """The update's license documents by license id."""
    found = (dict(unverified_claims(document)) for document in update["licenses"])
    return {claims["sub"]: claims for claims in found}


def test_a_ticket_of_several_templates_binds_one_of_each_and_sync_finds_the_device_current(
    vendors,
):
    vendor = vendors.create()
    plain = vendor.template({"delivery": "device"})
    counting = vendor.template(
        {"delivery": "device", "validity": {"kind": "days_from_activation", "days": 10}}
    )
    secret = vendor.template({"delivery": "device", "custom_data": {"secret": "key-42"}})
    lines = [{"sku": t["sku"], "quantity": 2} for t in (plain, counting, secret)]
    code = vendor.order(lines)["ticket_code"]
    first, second, third = (BareDevice(vendor.slug) for _ in range(3))
    documents = _documents(_activate(vendor, first, code))
    by_template = {vendor.ok("GET", f"/licenses/{sub}")["template_id"]: sub for sub in documents}
    assert set(by_template) == {plain["id"], counting["id"], secret["id"]}
    started = documents[by_template[counting["id"]]]
    assert started["valid_until"] - started["iat"] == 10 * 86400
    sealed = documents[by_template[secret["id"]]]["secret_data"]
    key = OKPKey.import_key(first.enc)
    assert jwe.decrypt_compact(sealed, key, algorithms=SECRET_ALGORITHMS).plaintext == b"key-42"
    assert _documents(_activate(vendor, first, code)).keys() == documents.keys()  # idempotent
    current = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/sync",
        content=first.request("sync"),
        headers={**JOSE, "If-None-Match": "*"},
    )
    assert current.status_code == 304, current.text
    assert current.headers["ETag"] == f'"{first.state}"'
    assert len(_activate(vendor, second, code)["licenses"]) == 3
    refused = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=third.request("activate", code),
        headers=JOSE,
    )
    assert refused.status_code == 409 and refused.json()["code"] == "NO_LICENSE_AVAILABLE"
    held = [len(item["license_ids"]) for item in vendor.ok("GET", "/devices")["items"]]
    assert sorted(held) == [3, 3]


def test_a_refused_activation_says_why_and_takes_nothing(vendors):
    vendor = vendors.create()
    device_code = vendor.order([{"sku": vendor.template({"delivery": "device"})["sku"]}])
    cloud = vendor.template({"delivery": "cloud"})
    cloud_code = vendor.order([{"sku": cloud["sku"]}])["ticket_code"]
    good = device_code["ticket_code"]
    typo = good[:-1] + ("A" if good[-1] != "A" else "B")
    refusals = {
        typo: (422, "TICKET_CODE_INVALID"),
        generate_ticket_code(): (404, "TICKET_NOT_FOUND"),
        cloud_code: (409, "WRONG_DELIVERY"),
    }
    for code, (status, problem) in refusals.items():
        answer = vendor.client.post(
            f"/api/v1/vendors/{vendor.slug}/devices/activate",
            content=BareDevice(vendor.slug).request("activate", code),
            headers=JOSE,
        )
        assert (answer.status_code, answer.json()["code"]) == (status, problem), code
    assert vendor.ok("GET", "/devices")["items"] == []  # no device was registered
    ticket = vendor.ok("GET", f"/tickets/{device_code['ticket_id']}")
    (license_id,) = ticket["license_ids"]
    assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "available"


def test_a_flagged_device_is_refused_before_its_ticket_is_looked_at(vendors):
    vendor = vendors.create()
    code = vendor.order([{"sku": vendor.template({"delivery": "device"})["sku"], "quantity": 2}])
    device = BareDevice(vendor.slug)
    _activate(vendor, device, code["ticket_code"])
    device.fingerprint = {name: "f" * 64 for name in device.fingerprint}
    cloned = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=device.request("activate", "NOT-A-CODE"),
        headers=JOSE,
    )
    assert cloned.status_code == 403 and cloned.json()["code"] == "FINGERPRINT_MISMATCH"
    device.fingerprint = dict(FACTORS)
    held = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=device.request("activate", code["ticket_code"]),
        headers=JOSE,
    )
    assert held.status_code == 403 and held.json()["code"] == "DEVICE_FLAGGED"
    (listed,) = vendor.ok("GET", "/devices")["items"]
    assert listed["flags"] == ["clone_suspected"] and listed["seq"] == 1
