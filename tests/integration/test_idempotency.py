"""``Idempotency-Key`` on every creating POST: a retry replays the first answer and
creates nothing twice; the key is the vendor's own and can carry no other request."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from httpx import Response
from sqlalchemy import select

from licentia.server.idempotency.models import IdempotencyRecord
from tests.factories import VendorFactory, VendorHandle

API = "/api/v1"


@dataclass(frozen=True)
class Creator:
    """A creating endpoint: how to make a valid body for it, and where its objects
    are listed (to count them)."""

    path: str
    body: Callable[[VendorHandle], dict[str, Any] | None]
    listed_at: str


def _template(vendor: VendorHandle) -> dict[str, Any]:
    product = vendor.product()
    return {"sku": vendor.unique("SKU"), "name": "T", "product_id": product["id"]}


def _order(vendor: VendorHandle) -> dict[str, Any]:
    return {"external_order_id": vendor.unique("ERP"), "lines": [{"sku": vendor.template()["sku"]}]}


CREATORS = {
    creator.path: creator
    for creator in (
        Creator("/products", lambda v: {"code": v.unique("P"), "name": "P"}, "/products"),
        Creator("/templates", _template, "/templates"),
        Creator("/customers", lambda v: {"name": v.unique("Acme")}, "/customers"),
        Creator("/orders", _order, "/orders"),
        Creator(
            "/api-keys",
            lambda v: {"name": v.unique("erp"), "scopes": ["orders:write"]},
            "/api-keys",
        ),
        Creator("/signing-keys/rotate", lambda v: None, "/signing-keys"),
        Creator("/cloud-containers", lambda v: {"name": v.unique("box")}, "/cloud-containers"),
        Creator(
            "/webhook-endpoints",
            lambda v: {"url": "http://127.0.0.1:9/hooks", "description": v.unique("erp")},
            "/webhook-endpoints",
        ),
        Creator(
            "/shop-mappings",
            lambda v: {
                "provider": "stripe",
                "provider_ref": v.unique("price"),
                "sku": v.template()["sku"],
            },
            "/shop-mappings",
        ),
    )
}
# Logging in makes a session, but it is no vendor resource: there is no caller's
# vendor to keep the key under, and a retry may simply log in again.
LOGIN = f"{API}/sessions"
# A replay asks for the event to be sent once more: a retried replay sends it again,
# with the same webhook-id, by which receivers drop what they have seen.
REPLAY = f"{API}/webhook-deliveries/{{delivery_id}}/actions/replay"
# The device protocol is idempotent by device and ticket, not by Idempotency-Key.
DEVICE_PROTOCOL = f"{API}/vendors/{{slug}}/"


# Endpoints that need no Idempotency-Key, being idempotent by what they are sent: each
# order of a batch by its external order id, a customer by its external id, a return
# by its return id, a cancellation by its order. Sent twice they answer alike (but
# for ``replayed``/``status``) and change nothing the second time.
@dataclass(frozen=True)
class ByContent:
    method: str
    path: str
    body: Callable[[VendorHandle], dict[str, Any]]
    listed_at: str


def _path(vendor: VendorHandle, template: str) -> str:
    """``template`` naming a new customer external id, or a new order of two licenses."""
    ids = {"external_id": vendor.unique("KD")}
    if "{order_id}" in template:
        ids["order_id"] = vendor.order([{"sku": vendor.template()["sku"], "quantity": 2}])["id"]
    return template.format(**ids)


BY_CONTENT = {
    f"{entry.method} {entry.path}": entry
    for entry in (
        ByContent("POST", "/orders/bulk", lambda v: {"orders": [_order(v), _order(v)]}, "/orders"),
        ByContent(
            "PUT", "/customers/by-external-id/{external_id}", lambda v: {"name": "A"}, "/customers"
        ),
        ByContent("POST", "/orders/{order_id}/actions/cancel", lambda v: {}, "/audit-events"),
        ByContent(
            "POST",
            "/orders/{order_id}/actions/return",
            lambda v: {"return_id": "RMA-1", "lines": [{"line_id": "1", "quantity": 1}]},
            "/audit-events",
        ),
    )
}


def post(vendor: VendorHandle, path: str, body: dict[str, Any] | None, key: str) -> Response:
    return vendor.post(path, json=body, headers={"Idempotency-Key": key})


def count(vendor: VendorHandle, path: str) -> int:
    items, cursor = 0, None
    while True:
        page = vendor.ok(
            "GET", path, params={"limit": 200, **({"cursor": cursor} if cursor else {})}
        )
        items += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def new_key() -> str:
    return f"idem-{secrets.token_hex(8)}"


creators = pytest.mark.parametrize("creator", CREATORS.values(), ids=list(CREATORS))


def test_every_creating_endpoint_is_covered_here(app: FastAPI) -> None:
    creating = {
        route.path
        for route in iter_route_contexts(app.routes)
        if route.path
        and route.path.startswith(API)
        and not route.path.startswith(DEVICE_PROTOCOL)
        and "POST" in (route.methods or ())
        and getattr(route.original_route, "status_code", None) == 201
    }
    assert creating - {LOGIN, REPLAY} == {f"{API}{path}" for path in CREATORS}


@creators
def test_a_retry_with_the_same_key_replays_the_answer_and_creates_nothing(
    vendors: VendorFactory, creator: Creator
) -> None:
    vendor = vendors.create()
    body, key = creator.body(vendor), new_key()
    before = count(vendor, creator.listed_at)
    first = post(vendor, creator.path, body, key)
    again = post(vendor, creator.path, body, key)
    assert first.status_code == 201, first.text
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert count(vendor, creator.listed_at) == before + 1


@creators
def test_the_same_key_with_another_body_is_refused_and_creates_nothing(
    vendors: VendorFactory, creator: Creator
) -> None:
    vendor = vendors.create()
    key = new_key()
    assert post(vendor, creator.path, creator.body(vendor), key).status_code == 201
    # Another body for the same endpoint, and the key reused on another endpoint
    # (rotation has no body to differ in, so only the latter applies to it).
    attempts = [(creator.path, creator.body(vendor)), ("/products", {"code": "O", "name": "O"})]
    attempts = [(path, body) for path, body in attempts if body is not None]
    lists = {creator.listed_at, "/products"}
    before = {path: count(vendor, path) for path in lists}
    for path, body in attempts:
        response = post(vendor, path, body, key)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
        assert response.json()["field"] == "Idempotency-Key"
    assert {path: count(vendor, path) for path in lists} == before


@creators
def test_keys_belong_to_one_vendor_so_another_vendor_may_use_the_same_string(
    vendors: VendorFactory, creator: Creator
) -> None:
    a, b = vendors.create(), vendors.create()
    key = new_key()
    first = post(a, creator.path, creator.body(a), key)
    before_b = count(b, creator.listed_at)
    second = post(b, creator.path, creator.body(b), key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() != second.json()
    assert count(b, creator.listed_at) == before_b + 1


@creators
def test_twenty_concurrent_requests_with_one_key_create_exactly_one_object(
    vendors: VendorFactory, creator: Creator
) -> None:
    vendor = vendors.create()
    body, key = creator.body(vendor), new_key()
    before = count(vendor, creator.listed_at)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: post(vendor, creator.path, body, key), range(20)))
    assert {(a.status_code, a.text) for a in answers} == {(201, answers[0].text)}
    assert count(vendor, creator.listed_at) == before + 1


def _same_but_replayed(first: dict[str, Any], again: dict[str, Any]) -> bool:
    if "results" in first:  # a batch: each order replayed
        replays = [
            {
                **item,
                "status": "replayed",
                "order": {**item["order"], "created": False, "added_lines": []},
            }
            for item in first["results"]
        ]
        return bool(again["results"] == replays and again["replayed"] == len(replays))
    return again == ({**first, "replayed": True} if "replayed" in first else first)


@pytest.mark.parametrize("entry", BY_CONTENT.values(), ids=list(BY_CONTENT))
def test_what_is_idempotent_by_its_content_answers_a_repeat_alike_and_changes_nothing(
    vendors: VendorFactory, entry: ByContent
) -> None:
    vendor = vendors.create()
    path = _path(vendor, entry.path)
    body = entry.body(vendor)
    first = vendor.request(entry.method, path, json=body)
    assert first.status_code in (200, 201), first.text
    before = count(vendor, entry.listed_at)
    again = vendor.request(entry.method, path, json=body)
    assert again.status_code == 200, again.text
    assert _same_but_replayed(first.json(), again.json())
    assert count(vendor, entry.listed_at) == before


def test_every_endpoint_idempotent_by_content_is_declared_without_a_key(app: FastAPI) -> None:
    """They take no Idempotency-Key: a key would promise what they give anyway."""
    declared = app.openapi()["paths"]
    for entry in BY_CONTENT.values():
        operation = declared[f"{API}{entry.path}"][entry.method.lower()]
        headers = [p["name"] for p in operation.get("parameters", ()) if p["in"] == "header"]
        assert "Idempotency-Key" not in headers


def test_a_failed_request_does_not_use_up_its_key(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    key = new_key()
    refused = post(vendor, "/products", {"code": "not a code!", "name": "P"}, key)
    assert refused.status_code == 422
    assert refused.json()["field"] == "code"
    assert post(vendor, "/products", {"code": "FIXED", "name": "P"}, key).status_code == 201


def test_without_a_key_a_repeated_post_creates_again(vendors: VendorFactory) -> None:
    """The control: it is the key that makes a retry safe."""
    vendor = vendors.create()
    vendor.ok("POST", "/customers", json={"name": "Acme"})
    vendor.ok("POST", "/customers", json={"name": "Acme"})
    assert count(vendor, "/customers") == 2


@pytest.mark.parametrize("key", ["", "k" * 201])
def test_an_empty_or_overlong_key_is_refused(vendors: VendorFactory, key: str) -> None:
    vendor = vendors.create()
    response = post(vendor, "/customers", {"name": "Acme"}, key)
    assert response.status_code == 422
    assert response.json()["code"] == "IDEMPOTENCY_KEY_INVALID"
    assert count(vendor, "/customers") == 0


def test_a_replayed_order_is_the_same_order_and_ticket(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    body, key = _order(vendor), new_key()
    first = post(vendor, "/orders", body, key).json()
    again = post(vendor, "/orders", body, key).json()
    assert (again["id"], again["ticket_id"], again["ticket_code"]) == (
        first["id"],
        first["ticket_id"],
        first["ticket_code"],
    )
    assert len(vendor.ok("GET", f"/tickets/{first['ticket_id']}")["license_ids"]) == 1


def test_stored_answers_do_not_reveal_api_keys_or_ticket_codes(vendors: VendorFactory) -> None:
    """A replay must show the new key's secret again, but a database leak must not."""
    vendor = vendors.create()
    issued = post(vendor, "/api-keys", {"name": "erp", "scopes": ["orders:write"]}, new_key())
    order = post(vendor, "/orders", _order(vendor), new_key())
    with vendor.database.read() as session:
        stored = session.scalars(
            select(IdempotencyRecord).where(IdempotencyRecord.vendor_id == vendor.id)
        ).all()
    assert len(stored) == 2
    text = repr([(record.body, record.request_hash) for record in stored])
    assert issued.json()["secret"] not in text
    assert order.json()["ticket_code"] not in text
    assert order.json()["ticket_code"].replace("-", "") not in text
