"""Every list pages with ``cursor``/``next_cursor``: no duplicates, no gaps, bounded limits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from tests.factories import VendorFactory, VendorHandle
from tests.integration.device_messages import BareDevice
from tests.support.shops import checkout_session, connect, stripe_event

API = "/api/v1"
AT_LEAST = 5


def _orders(vendor: VendorHandle) -> None:
    sku = vendor.template()["sku"]
    for _ in range(AT_LEAST):
        order = vendor.order([{"sku": sku}])
        device = BareDevice(vendor.slug)
        activated = vendor.client.post(
            f"{API}/vendors/{vendor.slug}/devices/activate",
            content=device.request("activate", order["ticket_code"]),
            headers={"Content-Type": "application/jose"},
        )
        assert activated.status_code == 200, activated.text


def _shop_mappings(vendor: VendorHandle) -> None:
    sku = vendor.template()["sku"]
    for _ in range(AT_LEAST):
        body = {"provider": "stripe", "provider_ref": vendor.unique("price"), "sku": sku}
        vendor.ok("POST", "/shop-mappings", json=body)


def _shop_events(vendor: VendorHandle) -> None:
    shop = connect(vendor)
    for _ in range(AT_LEAST):  # each refused (its price is mapped to nothing) and logged
        shop.send(stripe_event("checkout.session.completed", checkout_session([("price_x", 1)])))


def _times(
    make: Callable[[VendorHandle], Any], n: int = AT_LEAST
) -> Callable[[VendorHandle], None]:
    def seed(vendor: VendorHandle) -> None:
        for _ in range(n):
            make(vendor)

    return seed


# What to create so that each list has several pages at limit=2. Orders also make
# the tickets, licenses, devices and audit events.
SEEDS: dict[str, Callable[[VendorHandle], None]] = {
    "/products": _times(lambda v: v.product()),
    "/templates": _times(lambda v: v.template()),
    "/customers": _times(lambda v: v.ok("POST", "/customers", json={"name": "C"})),
    "/orders": _orders,
    "/tickets": lambda v: None,
    "/licenses": lambda v: None,
    "/devices": lambda v: None,
    "/audit-events": lambda v: None,
    "/signing-keys": _times(lambda v: v.ok("POST", "/signing-keys/rotate"), AT_LEAST - 1),
    "/api-keys": _times(
        lambda v: v.ok("POST", "/api-keys", json={"name": "k", "scopes": ["catalog:read"]}),
        AT_LEAST - 1,
    ),
    "/cloud-containers": _times(lambda v: v.ok("POST", "/cloud-containers", json={"name": "c"})),
    "/webhook-endpoints": _times(
        lambda v: v.ok("POST", "/webhook-endpoints", json={"url": "http://127.0.0.1:9/hooks"})
    ),
    "/shop-mappings": _shop_mappings,
    "/shop-events": _shop_events,
}
lists = pytest.mark.parametrize("path", SEEDS, ids=list(SEEDS))


@pytest.fixture(scope="module")
def vendor(database: Database, master: MasterKey, client: TestClient) -> VendorHandle:
    """One vendor with several pages of everything."""
    vendor = VendorFactory(database, master, client).create()
    for seed in SEEDS.values():
        seed(vendor)
    return vendor


def identity(item: dict[str, Any]) -> str:
    return str(item.get("id") or item["kid"])


def walk(vendor: VendorHandle, path: str, limit: int, **params: Any) -> list[list[str]]:
    """The ids of every page, following next_cursor until it is null."""
    pages, cursor = [], None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = vendor.ok("GET", path, params=query)
        pages.append([identity(item) for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000, "next_cursor never ends"


def test_every_list_endpoint_is_covered_here(app: FastAPI) -> None:
    listed = {
        route.path.removeprefix(API)
        for route in iter_route_contexts(app.routes)
        if route.path
        and route.path.startswith(API)
        and "GET" in (route.methods or ())
        and "{" not in route.path
    }
    assert listed == set(SEEDS)


@lists
def test_paging_through_a_list_shows_every_item_once_in_order(
    vendor: VendorHandle, path: str
) -> None:
    pages = walk(vendor, path, limit=2)
    (everything,) = walk(vendor, path, limit=200)
    walked = [ident for page in pages for ident in page]
    assert len(everything) >= AT_LEAST
    assert walked == everything
    assert len(set(walked)) == len(walked)
    assert all(len(page) == 2 for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= 2


@lists
def test_the_last_page_has_no_next_cursor(vendor: VendorHandle, path: str) -> None:
    page = vendor.ok("GET", path, params={"limit": 200})
    assert page["next_cursor"] is None
    assert vendor.ok("GET", path, params={"limit": 1})["next_cursor"] is not None


def test_items_created_while_paging_appear_once_at_the_end(vendor: VendorHandle) -> None:
    first = vendor.ok("GET", "/products", params={"limit": 2})
    added = vendor.product()
    cursor, seen = first["next_cursor"], [identity(item) for item in first["items"]]
    while cursor:
        page = vendor.ok("GET", "/products", params={"limit": 2, "cursor": cursor})
        seen += [identity(item) for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen.count(added["id"]) == 1
    assert seen[-1] == added["id"]
    assert len(seen) == len(set(seen))


def test_filters_and_paging_go_together(vendors: VendorFactory) -> None:
    other = vendors.create()
    order = other.order([{"sku": other.template()["sku"], "quantity": 5}])
    other.order([{"sku": other.template()["sku"], "quantity": 2}])
    pages = walk(other, "/licenses", limit=2, ticket_id=order["ticket_id"])
    ticket = other.ok("GET", f"/tickets/{order['ticket_id']}")
    assert [ident for page in pages for ident in page] == ticket["license_ids"]


@lists
@pytest.mark.parametrize("limit", [0, -1, 201, 10**6])
def test_a_limit_outside_1_to_200_is_refused(vendor: VendorHandle, path: str, limit: int) -> None:
    response = vendor.get(path, params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert response.json()["field"].endswith("limit")


@lists
def test_the_limit_bounds_themselves_are_accepted(vendor: VendorHandle, path: str) -> None:
    assert len(vendor.ok("GET", path, params={"limit": 1})["items"]) == 1
    assert len(vendor.ok("GET", path, params={"limit": 200})["items"]) >= AT_LEAST


@lists
@pytest.mark.parametrize("cursor", ["!!!!", "AA", "not a cursor", "%%", "MDFh=x", "é"])
def test_a_malformed_cursor_is_refused(vendor: VendorHandle, path: str, cursor: str) -> None:
    response = vendor.get(path, params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert (response.json()["code"], response.json()["field"]) == ("VALIDATION_FAILED", "cursor")
