"""Every failure is an RFC 9457 problem (``application/problem+json``) with a stable
``code``; bad input is never a 500; a 500 tells nothing of the server's insides."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from licentia.domain.errors import ConfigurationError
from licentia.server.api import create_app
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from tests.factories import VendorFactory, VendorHandle

PROBLEM = "application/problem+json"
Call = Callable[[VendorHandle], Response]


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:licentia:problem:{code}"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def _license(vendor: VendorHandle) -> str:
    return str(vendor.license()["id"])


def _raw(vendor: VendorHandle, method: str, path: str, **kwargs: Any) -> Response:
    return vendor.client.request(method, path, **kwargs)


FAILURES: dict[str, tuple[Call, int, str]] = {
    "no credential": (lambda v: _raw(v, "GET", "/api/v1/products"), 401, "UNAUTHENTICATED"),
    "a scope missing": (
        lambda v: v.get("/audit-events", token=v.new_api_key(["catalog:read"])),
        403,
        "FORBIDDEN",
    ),
    "an unknown object": (lambda v: v.get("/products/nope"), 404, "NOT_FOUND"),
    "an unknown route under the API": (lambda v: v.get("/no-such-thing"), 404, "NOT_FOUND"),
    "an unknown route anywhere": (lambda v: _raw(v, "GET", "/nowhere"), 404, "NOT_FOUND"),
    "a method the route lacks": (
        lambda v: v.request("DELETE", "/products"),
        405,
        "METHOD_NOT_ALLOWED",
    ),
    "a duplicate": (
        lambda v: [v.post("/products", json={"code": "D", "name": "D"}) for _ in "12"][-1],
        409,
        "ALREADY_EXISTS",
    ),
    "an illegal transition": (
        lambda v: v.post(f"/licenses/{_license(v)}/actions/resume"),
        409,
        "ILLEGAL_TRANSITION",
    ),
    "a missing field": (
        lambda v: v.post("/products", json={"code": "C"}),
        422,
        "VALIDATION_FAILED",
    ),
    "a field of the wrong type": (
        lambda v: v.post("/products", json={"code": "C", "name": ["x"]}),
        422,
        "VALIDATION_FAILED",
    ),
    "malformed JSON": (
        lambda v: v.post(
            "/products", content=b'{"code": "C",', headers={"Content-Type": "application/json"}
        ),
        400,
        "BAD_REQUEST",
    ),
    "a JSON list for an object": (
        lambda v: v.post("/products", json=[{"code": "C", "name": "C"}]),
        422,
        "VALIDATION_FAILED",
    ),
    "a bad query parameter": (
        lambda v: v.get("/products", params={"limit": "many"}),
        422,
        "VALIDATION_FAILED",
    ),
    "a broken domain rule": (
        lambda v: v.post("/products", json={"code": "no spaces", "name": "C"}),
        422,
        "VALIDATION_FAILED",
    ),
    "a ticket code with a typo": (
        lambda v: v.post("/tickets/lookup", json={"code": "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA"}),
        422,
        "TICKET_CODE_INVALID",
    ),
    "an unknown SKU in an order": (
        lambda v: v.post("/orders", json={"external_order_id": "E", "lines": [{"sku": "NO"}]}),
        422,
        "UNKNOWN_SKU",
    ),
    "a JSON body nested beyond reason": (
        lambda v: v.post(
            "/products",
            content=b'{"code": "C", "name": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001,
            headers={"Content-Type": "application/json"},
        ),
        400,
        "BAD_REQUEST",
    ),
}


@pytest.mark.parametrize("case", FAILURES, ids=list(FAILURES))
def test_every_failure_is_a_problem_document_with_a_stable_code(
    vendors: VendorFactory, case: str
) -> None:
    call, status, code = FAILURES[case]
    assert_problem(call(vendors.create()), status, code)


def test_an_unauthenticated_answer_says_how_to_authenticate(vendors: VendorFactory) -> None:
    response = vendors.create().client.get("/api/v1/products")
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_validation_problem_names_the_field_and_lists_every_error(
    vendors: VendorFactory,
) -> None:
    vendor = vendors.create()
    body = assert_problem(vendor.post("/products", json={}), 422, "VALIDATION_FAILED")
    assert body["field"] in {"code", "name"}
    assert {error["field"] for error in body["errors"]} == {"code", "name"}


def test_malformed_json_is_a_bad_request_that_names_no_field(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    response = vendor.post(
        "/customers", content=b"{'name': 1}", headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 400, "BAD_REQUEST")
    assert "field" not in problem and "not valid JSON" in problem["detail"]


def test_a_json_body_without_its_content_type_says_which_header_to_send(
    vendors: VendorFactory,
) -> None:
    vendor = vendors.create()
    response = vendor.post("/customers", content=b'{"name": "Acme"}')
    problem = assert_problem(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "Content-Type: application/json" in problem["detail"]
    assert "dictionary" not in problem["detail"]


def test_every_field_path_names_list_positions_in_brackets(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    lines = [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": "two"}]
    response = vendor.post("/orders", json={"external_order_id": "E", "lines": lines})
    problem = assert_problem(response, 422, "VALIDATION_FAILED")
    assert problem["field"] == "lines[1].quantity"
    assert [error["field"] for error in problem["errors"]] == ["lines[1].quantity"]
    unknown = vendor.post("/orders", json={"external_order_id": "E", "lines": [{"sku": "NO"}]})
    assert assert_problem(unknown, 422, "UNKNOWN_SKU")["field"] == "lines[0].sku"
    # Query parameters are named the same way, whoever checks them.
    too_many = assert_problem(
        vendor.get("/orders", params={"limit": 500}), 422, "VALIDATION_FAILED"
    )
    bad_cursor = assert_problem(
        vendor.get("/orders", params={"cursor": "!"}), 422, "VALIDATION_FAILED"
    )
    assert (too_many["field"], bad_cursor["field"]) == ("limit", "cursor")


def test_a_conflict_names_the_current_state(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    license_id = _license(vendor)
    vendor.ok("POST", f"/licenses/{license_id}/actions/withdraw")
    response = vendor.post(f"/licenses/{license_id}/actions/suspend")
    assert assert_problem(response, 409, "ILLEGAL_TRANSITION")["current_state"] == "withdrawn"


# --- bad input is the caller's problem, not the server's -----------------------------------

BAD_INPUT: dict[str, Call] = {
    "a time without a zone as an audit filter": lambda v: v.get(
        "/audit-events", params={"since": "2024-01-01T00:00:00"}
    ),
    "an extension by millions of years": lambda v: v.post(
        f"/licenses/{v.license({'validity': {'kind': 'days_from_issue', 'days': 5}})['id']}"
        "/actions/extend",
        json={"days": 10**9},
    ),
    "an extension to a time without a zone": lambda v: v.post(
        f"/licenses/{v.license({'validity': {'kind': 'days_from_issue', 'days': 5}})['id']}"
        "/actions/extend",
        json={"until": "2099-01-01T00:00:00"},
    ),
    "a NUL character in a name": lambda v: v.post("/products", json={"code": "N", "name": "a\0b"}),
    "a NUL character in an id": lambda v: v.get("/products/a%00b"),
    "a NUL character in a filter": lambda v: v.get("/licenses", params={"ticket_id": "a\0"}),
    "a NUL character in protected data": lambda v: v.post(
        "/templates",
        json={
            "sku": "N",
            "name": "N",
            "product_id": v.product()["id"],
            "options": {"custom_data": {"protected": {"k": "\0"}}},
        },
    ),
    "a cursor that decodes to a NUL byte": lambda v: v.get("/products", params={"cursor": "AA"}),
    "a huge number": lambda v: v.post(
        "/orders", json={"external_order_id": "E", "lines": [{"sku": "S", "quantity": 10**40}]}
    ),
    "an overlong idempotency key": lambda v: v.post(
        "/customers", json={"name": "C"}, headers={"Idempotency-Key": "k" * 10_000}
    ),
}


@pytest.mark.parametrize("case", BAD_INPUT, ids=list(BAD_INPUT))
def test_bad_input_is_answered_without_a_server_error(vendors: VendorFactory, case: str) -> None:
    response = BAD_INPUT[case](vendors.create())
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"]


# --- a server error tells nothing ------------------------------------------------------


@pytest.fixture
def fragile_client(settings: Settings, database: Database, master: MasterKey) -> TestClient:
    """The real app with two routes that fail the way a bug or a bad set-up would."""
    app: FastAPI = create_app(settings, database=database, master=master)

    def crash() -> None:
        raise RuntimeError("password=hunter2 in /srv/licentia/secret_module.py line 42")

    def misconfigured() -> None:
        raise ConfigurationError("the key file /etc/licentia/master.key is unreadable")

    app.add_api_route("/api/v1/test-crash", crash)
    app.add_api_route("/api/v1/test-misconfigured", misconfigured)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("path", "code", "internals"),
    [
        ("/api/v1/test-crash", "INTERNAL_ERROR", ["hunter2", "secret_module", "RuntimeError"]),
        ("/api/v1/test-misconfigured", "CONFIGURATION_ERROR", ["/etc/licentia", "master.key"]),
    ],
)
def test_a_server_error_is_a_problem_that_leaks_no_internals(
    fragile_client: TestClient, path: str, code: str, internals: list[str]
) -> None:
    response = fragile_client.get(path)
    assert_problem(response, 500, code)
    assert [text for text in [*internals, "Traceback", 'File "'] if text in response.text] == []
