"""Input an attacker (or a careless client) sends is answered with a 4xx problem, never
a 500: each case here once produced a server error (docs/security.md)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from typing import Any

import pytest
from httpx import Response
from hypothesis import given, settings
from hypothesis import strategies as st

from licentia.formats.device import okp_jwk
from licentia.formats.document_types import REQUEST_TYP, RETURN_TYP
from tests.factories import VendorHandle
from tests.integration.device_messages import FACTORS, BareDevice
from tests.integration.test_errors import assert_problem

JOSE = {"Content-Type": "application/jose"}
DEEP = 5000


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed_raw(device: BareDevice, payload: bytes, typ: str = REQUEST_TYP) -> str:
    """A JWS over exactly ``payload`` (json.dumps cannot even write what this sends)."""
    header = json.dumps({"alg": "Ed25519", "kid": device.id, "typ": typ}).encode()
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    return f"{signing_input}.{_b64(device.key.sign(signing_input.encode()))}"


def _post_jose(vendor: VendorHandle, path: str, token: str) -> Response:
    return vendor.client.post(f"/api/v1/vendors/{vendor.slug}{path}", content=token, headers=JOSE)


def _ticket(vendor: VendorHandle) -> str:
    return str(vendor.order()["ticket_code"])


# --- customers ------------------------------------------------------------------------


def test_a_customer_name_cannot_be_set_to_null(vendors):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme"})
    answer = vendor.request("PATCH", f"/customers/{customer['id']}", json={"name": None})
    assert assert_problem(answer, 422, "VALIDATION_FAILED")["field"] == "name"
    assert vendor.ok("GET", f"/customers/{customer['id']}")["name"] == "Acme"


# --- device messages ------------------------------------------------------------------


@pytest.mark.parametrize("op", ["activate", "sync"])
@pytest.mark.parametrize("iat", [10**20, 2**63, 10**12])
def test_a_device_request_from_beyond_the_calendar_is_expired(vendors, op, iat):
    vendor = vendors.create()
    device = BareDevice(vendor.slug)
    token = device.request(op, _ticket(vendor), iat=iat)
    assert_problem(_post_jose(vendor, f"/devices/{op}", token), 422, "REQUEST_EXPIRED")


DEVICE_PATHS = [
    "/devices/activate",
    "/devices/sync",
    "/devices/offline",
    "/devices/receipts",
    "/devices/returns",
    "/cloud/borrow/returns",
]


DEEPLY_NESTED = {
    "payload": f"{_b64(b'{}')}.{_b64(b'[' * DEEP)}.{_b64(bytes(64))}",
    "header": f"{_b64(b'[' * DEEP)}.{_b64(b'{}')}.{_b64(bytes(64))}",
}


@pytest.mark.parametrize("path", DEVICE_PATHS)
@pytest.mark.parametrize("where", DEEPLY_NESTED)
def test_a_deeply_nested_unsigned_message_is_refused(vendors, path, where):
    vendor = vendors.create()
    token = DEEPLY_NESTED[where]
    assert_problem(_post_jose(vendor, path, token), 401, "SIGNATURE_INVALID")


@pytest.mark.parametrize("path", DEVICE_PATHS)
def test_a_deeply_nested_payload_signed_by_its_own_key_is_refused(vendors, path):
    vendor = vendors.create()
    device = BareDevice(vendor.slug)
    key = json.dumps(okp_jwk(device.key.public_key())).encode()
    payload = b'{"device_key":' + key + b',"x":' + b"[" * DEEP + b"]" * DEEP + b"}"
    typ = RETURN_TYP if path.endswith("returns") else REQUEST_TYP
    answer = _post_jose(vendor, path, _signed_raw(device, payload, typ))
    assert_problem(answer, 401, "SIGNATURE_INVALID")


# Claims a device could sign with a key of its own making: the protocol's names with
# values of any JSON type and size (huge integers, wrong types, nesting), and others.
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_CLAIMS = st.dictionaries(
    st.sampled_from(
        [
            "op",
            "ticket",
            "device_key",
            "enc_key",
            "fingerprint",
            "vm",
            "seq",
            "state",
            "iat",
            "aud",
            "iss",
            "jti",
            "license",
            "lease",
            "typ",
            "x",
        ]
    ),
    _JSON,
    max_size=10,
)


@pytest.mark.parametrize("path", DEVICE_PATHS)
def test_any_claims_signed_by_a_device_get_a_problem_never_a_server_error(vendors, path):
    """A well-formed activation request with some of its claims replaced by anything:
    signed by the key it names, so every claim is read."""
    vendor = vendors.create()
    device = BareDevice(vendor.slug)
    ticket = _ticket(vendor)
    typ = RETURN_TYP if path.endswith("returns") else REQUEST_TYP

    @settings(max_examples=25, derandomize=True, database=None, deadline=None)
    @given(replaced=_CLAIMS)
    def answered(replaced: dict[str, Any]) -> None:
        claims = {
            "iss": device.id,
            "aud": vendor.slug,
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(12),
            "op": "activate",
            "ticket": ticket,
            "device_key": okp_jwk(device.key.public_key()),
            "enc_key": okp_jwk(device.enc.public_key()),
            "fingerprint": dict(FACTORS),
            "vm": False,
            "seq": 0,
            "state": None,
            **replaced,
        }
        answer = _post_jose(vendor, path, _signed_raw(device, json.dumps(claims).encode(), typ))
        assert answer.status_code < 500, answer.text
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == "application/problem+json"

    answered()


@pytest.mark.parametrize("lease", [None, 7, ["a"], "", "x" * 65])
def test_a_borrow_return_proof_without_a_lease_id_is_refused(vendors, lease):
    """It was answered 200 with the lease id "None" (found by the test above)."""
    vendor = vendors.create()
    device = BareDevice(vendor.slug)
    claims = {
        "iss": device.id,
        "aud": vendor.slug,
        "iat": int(time.time()),
        "jti": secrets.token_urlsafe(12),
        "device_key": okp_jwk(device.key.public_key()),
    } | ({} if lease is None else {"lease": lease})
    proof = _signed_raw(device, json.dumps(claims).encode(), RETURN_TYP)
    answer = _post_jose(vendor, "/cloud/borrow/returns", proof)
    assert assert_problem(answer, 422, "VALIDATION_FAILED")["field"] == "lease"


def test_a_sane_device_request_still_activates(vendors):
    vendor = vendors.create()
    device = BareDevice(vendor.slug)
    answer = _post_jose(vendor, "/devices/activate", device.request("activate", _ticket(vendor)))
    assert answer.status_code == 200, answer.text


# --- templates and licenses -----------------------------------------------------------


def _fixed_end(end: str) -> dict[str, Any]:
    return {"validity": {"kind": "fixed_end", "end_date": end}}


@pytest.mark.parametrize("end", ["9999-12-31", "3000-01-01"])
def test_a_fixed_end_beyond_the_supported_range_is_refused(vendors, end):
    vendor = vendors.create()
    product = vendor.product()
    answer = vendor.post(
        "/templates",
        json={
            "sku": vendor.unique("SKU"),
            "name": "Forever",
            "product_id": product["id"],
            "options": _fixed_end(end),
        },
    )
    assert assert_problem(answer, 422, "DATE_OUT_OF_RANGE")["field"] == "options.validity.end_date"


def test_the_last_supported_fixed_end_is_ordered_and_documented(vendors):
    vendor = vendors.create()
    template = vendor.template(_fixed_end("2999-12-31"))
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    license_id = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"][0]
    assert vendor.ok("GET", f"/licenses/{license_id}")["valid_until"].startswith("3000-01-01")
    document = vendor.get(f"/licenses/{license_id}/document")
    assert document.status_code == 200, document.text


def test_extensions_stop_at_the_end_of_the_supported_range(vendors):
    vendor = vendors.create()
    license_ = vendor.license({"validity": {"kind": "days_from_issue", "days": 30}})
    path = f"/licenses/{license_['id']}/actions/extend"
    answers = [vendor.post(path, json={"days": 36_500}) for _ in range(12)]
    assert {a.status_code for a in answers[:9]} == {200}
    refused = [a for a in answers if a.status_code != 200]
    assert refused, "a license was extended beyond the supported range"
    for answer in refused:
        assert_problem(answer, 422, "DATE_OUT_OF_RANGE")
    until = vendor.post(path, json={"until": "9999-12-31T00:00:00Z"})
    assert_problem(until, 422, "DATE_OUT_OF_RANGE")
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["valid_until"] < "3000"


def test_template_options_nested_too_deep_are_refused(vendors):
    vendor = vendors.create()
    nested: Any = "bottom"
    for _ in range(400):
        nested = {"n": nested}
    product = vendor.product()
    answer = vendor.post(
        "/templates",
        json={
            "sku": vendor.unique("SKU"),
            "name": "Deep",
            "product_id": product["id"],
            "options": {"custom_data": {"protected": {"deep": nested}}},
        },
    )
    body = assert_problem(answer, 422, "VALIDATION_FAILED")
    assert body["field"] == "options.custom_data.protected"


# --- lists ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor", [_b64(b"9" * 23), _b64(str(2**63).encode()), _b64(b"-1" + b"0" * 20)]
)
def test_an_audit_cursor_beyond_64_bits_is_malformed(vendors, cursor):
    vendor = vendors.create()
    answer = vendor.get("/audit-events", params={"cursor": cursor})
    assert assert_problem(answer, 422, "VALIDATION_FAILED")["field"] == "cursor"


def test_the_issue_s_audit_cursor_is_refused_alike(vendors):
    vendor = vendors.create()
    answer = vendor.get("/audit-events", params={"cursor": "OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk"})
    assert_problem(answer, 422, "VALIDATION_FAILED")


def test_an_unknown_license_state_filter_names_the_allowed_states(vendors):
    vendor = vendors.create()
    vendor.license()
    answer = vendor.get("/licenses", params={"state": "bogus"})
    body = assert_problem(answer, 422, "VALIDATION_FAILED")
    assert body["field"] == "state"
    assert "available" in body["allowed"] and "expired" in body["allowed"]
    assert "available" in body["detail"]
    assert len(vendor.ok("GET", "/licenses", params={"state": "available"})["items"]) == 1


def test_an_unknown_device_status_filter_names_the_allowed_ones(vendors):
    vendor = vendors.create()
    answer = vendor.get("/devices", params={"status": "bogus"})
    body = assert_problem(answer, 422, "VALIDATION_FAILED")
    assert body["field"] == "status" and body["allowed"] == ["active", "blacklisted"]
    assert vendor.ok("GET", "/devices", params={"status": "active"})["items"] == []


# --- identifiers ----------------------------------------------------------------------

INVISIBLE = {
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "byte-order mark": "\ufeff",
    "NUL": "\x00",
    "tab": "\t",
    "line separator": "\u2028",
}


def refusal_of(name: str, field: str) -> tuple[str, str]:
    """The code and field of the refusal of an identifier holding INVISIBLE[name]: a
    NUL is refused in any text before the body is read further (test_nul_text.py)."""
    return ("VALIDATION_FAILED", "body") if name == "NUL" else ("IDENTIFIER_INVALID", field)


@pytest.mark.parametrize("name", INVISIBLE)
def test_a_customer_external_id_with_an_invisible_character_is_refused(vendors, name):
    vendor = vendors.create()
    external_id = f"CUST{INVISIBLE[name]}-1"
    code, field = refusal_of(name, "external_id")
    answer = vendor.post("/customers", json={"name": "Acme", "external_id": external_id})
    assert assert_problem(answer, 422, code)["field"] == field
    customer = vendor.ok("POST", "/customers", json={"name": "Acme", "external_id": "CUST-1"})
    answer = vendor.request(
        "PATCH", f"/customers/{customer['id']}", json={"external_id": external_id}
    )
    assert assert_problem(answer, 422, code)["field"] == field


def test_a_customer_external_id_is_one_identifier_however_its_accents_are_encoded(vendors):
    vendor = vendors.create()
    decomposed, composed = "Cafe\u0301-7", "Caf\u00e9-7"
    created = vendor.ok("POST", "/customers", json={"name": "Café", "external_id": decomposed})
    assert created["external_id"] == composed
    again = vendor.post("/customers", json={"name": "Café", "external_id": composed})
    assert_problem(again, 409, "ALREADY_EXISTS")
    found = vendor.ok("GET", "/customers", params={"external_id": decomposed})["items"]
    assert [item["id"] for item in found] == [created["id"]]


@pytest.mark.parametrize("name", ["right-to-left override", "zero-width space", "NUL"])
def test_order_and_line_ids_with_an_invisible_character_are_refused(vendors, name):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    bad = f"SHOP{INVISIBLE[name]}1"
    answer = vendor.post(
        "/orders", json={"external_order_id": bad, "lines": [{"sku": sku, "quantity": 1}]}
    )
    code, field = refusal_of(name, "external_order_id")
    assert assert_problem(answer, 422, code)["field"] == field
    answer = vendor.post(
        "/orders",
        json={"external_order_id": "SHOP-1", "lines": [{"sku": sku, "line_id": bad}]},
    )
    code, field = refusal_of(name, "lines[0].line_id")
    assert assert_problem(answer, 422, code)["field"] == field


def test_an_order_id_sent_in_another_normal_form_is_the_same_order(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    lines = [{"sku": sku, "quantity": 1, "line_id": "Pos-\u00e9"}]
    first = vendor.ok("POST", "/orders", json={"external_order_id": "Ordre-\u00e9", "lines": lines})
    lines = [{"sku": sku, "quantity": 1, "line_id": "Pos-e\u0301"}]
    again = vendor.post("/orders", json={"external_order_id": "Ordre-e\u0301", "lines": lines})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first["id"] and again.json()["added_lines"] == []
    found = vendor.ok("GET", "/orders", params={"external_order_id": "Ordre-e\u0301"})["items"]
    assert [item["id"] for item in found] == [first["id"]]
