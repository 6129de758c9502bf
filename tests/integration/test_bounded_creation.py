"""What one vendor may create is bounded, so that one request cannot grow the database
or every later list without limit (docs/security.md, "Bounded creation"): features
per product, custom data per template, licenses per order and per order line. Each
refusal names its code and leaves what was there untouched and usable."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from licentia.domain.templates import MAX_PROTECTED_BYTES
from licentia.server.api.schemas import MAX_PAGE_BYTES
from licentia.server.audit.services import PENDING_EVENTS, verify_chains
from licentia.server.catalog.services import MAX_FEATURES
from licentia.server.orders.services import (
    MAX_LICENSES_PER_ORDER,
    MAX_QUANTITY,
    SYNCHRONOUS_LICENSES,
)
from tests.integration.test_errors import assert_problem


def _features(count: int, prefix: str = "f") -> list[dict[str, str]]:
    return [{"code": f"{prefix}{n}"} for n in range(count)]


def test_a_product_has_at_most_256_features(vendors):
    vendor = vendors.create()
    full = vendor.ok(
        "POST", "/products", json={"code": "FULL", "name": "Full", "features": _features(256)}
    )
    assert len(full["features"]) == MAX_FEATURES == 256
    one_more = vendor.request(
        "PATCH", f"/products/{full['id']}", json={"add_features": _features(1, "extra")}
    )
    problem = assert_problem(one_more, 422, "TOO_MANY_FEATURES")
    assert (problem["field"], problem["limit"]) == ("add_features", MAX_FEATURES)
    too_many = vendor.post(
        "/products", json={"code": "MORE", "name": "More", "features": _features(257)}
    )
    assert assert_problem(too_many, 422, "VALIDATION_FAILED")["field"] == "features"
    # The full product is untouched and still serves its templates.
    assert len(vendor.ok("GET", f"/products/{full['id']}")["features"]) == 256
    template = vendor.template(product=full, features=["f0", "f255"])
    assert template["features"] == ["f0", "f255"]


def _protected(size: int) -> dict[str, str]:
    """Protected custom data whose compact JSON is ``size`` bytes long."""
    overhead = len('{"blob":""}')
    return {"blob": "x" * (size - overhead)}


def test_protected_custom_data_is_at_most_16_kib_of_json(vendors):
    vendor = vendors.create()
    largest = {"custom_data": {"protected": _protected(MAX_PROTECTED_BYTES)}}
    template = vendor.template(largest)
    assert len(template["options"]["custom_data"]["protected"]["blob"]) > 16_000
    too_large = {"custom_data": {"protected": _protected(MAX_PROTECTED_BYTES + 1)}}
    refused = vendor.request("PATCH", f"/templates/{template['id']}", json={"options": too_large})
    problem = assert_problem(refused, 422, "CUSTOM_DATA_TOO_LARGE")
    assert problem["field"] == "options.custom_data.protected"
    # The template keeps its options and still issues licenses.
    order = vendor.order([{"sku": template["sku"], "quantity": 2}])
    assert len(vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]) == 2


# --- orders ------------------------------------------------------------------------------


def test_an_order_holds_at_most_20_000_licenses(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    full = vendor.order([{"sku": sku, "quantity": SYNCHRONOUS_LICENSES}])
    assert (MAX_LICENSES_PER_ORDER, MAX_QUANTITY) == (20_000, 20_000)
    lines = [{"sku": sku, "quantity": SYNCHRONOUS_LICENSES}, {"sku": sku, "quantity": 19_001}]
    more = {"external_order_id": full["external_order_id"], "lines": lines}
    extended = vendor.post("/orders", json=more)  # line "1" is known, line "2" is new
    problem = assert_problem(extended, 422, "ORDER_TOO_LARGE")
    assert (problem["field"], problem["limit"]) == ("lines", MAX_LICENSES_PER_ORDER)
    split = [{"sku": sku, "quantity": 12_000}, {"sku": sku, "quantity": 8_001}]
    refused = vendor.post("/orders", json={"external_order_id": "SPLIT", "lines": split})
    assert_problem(refused, 422, "ORDER_TOO_LARGE")
    one_line = vendor.post(
        "/orders",
        json={"external_order_id": "LINE", "lines": [{"sku": sku, "quantity": 20_001}]},
    )
    assert assert_problem(one_line, 422, "VALIDATION_FAILED")["field"] == "lines[0].quantity"
    # Nothing of the refused orders was written; the full one is whole and usable.
    assert vendor.ok("GET", "/orders?external_order_id=SPLIT")["items"] == []
    ticket = vendor.ok("GET", f"/tickets/{full['ticket_id']}")
    assert len(ticket["license_ids"]) == SYNCHRONOUS_LICENSES
    assert vendor.ok("GET", f"/licenses/{ticket['license_ids'][-1]}")["state"] == "available"


class _ParkedOrders:
    """Holds a transaction that issues many licenses just before it commits: its rows
    are written, its audit events not yet appended (the step that locks the vendor's
    chain)."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.go_on = threading.Event()

    def __call__(self, session: Session) -> None:
        if len(session.info.get(PENDING_EVENTS, ())) >= SYNCHRONOUS_LICENSES:
            self.inside.set()
            assert self.go_on.wait(120), "the test never let the order go on"


@pytest.fixture
def parked_orders() -> Iterator[_ParkedOrders]:
    parked = _ParkedOrders()
    event.listen(Session, "before_commit", parked, insert=True)  # before the audit append
    yield parked
    parked.go_on.set()
    event.remove(Session, "before_commit", parked)


def test_while_a_large_order_is_written_other_requests_are_served(vendors, parked_orders, backend):
    large, other = vendors.create(), vendors.create()
    large_sku, other_sku = large.template()["sku"], other.template()["sku"]
    other_license = other.license()["id"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        big = pool.submit(large.order, [{"sku": large_sku, "quantity": SYNCHRONOUS_LICENSES}])
        assert parked_orders.inside.wait(120)
        # The large order's rows are written and its transaction is open. Reads never
        # wait for a writer, on either backend.
        assert other.ok("GET", f"/licenses/{other_license}")["state"] == "available"
        assert other.ok("GET", "/orders")["items"]
        small_other = pool.submit(other.order, [{"sku": other_sku}])
        small_same = pool.submit(large.order, [{"sku": large_sku}])
        if backend == "postgresql":
            # Nothing of the vendor's is locked before the audit append: orders of this
            # vendor and of another complete while the large one is still open.
            assert small_other.result(timeout=120)["created"]
            assert small_same.result(timeout=120)["created"]
            assert not big.done()
        # SQLite has one writer: the small orders wait for the large one's commit.
        parked_orders.go_on.set()
        assert big.result(timeout=120)["created"]
        assert small_other.result(timeout=120)["created"]
        assert small_same.result(timeout=120)["created"]
    with large.database.read() as session:  # every event appended, the chain intact
        assert verify_chains(session, large.id) == []
    issued = large.ok("GET", "/audit-events?limit=200&action=license.issued")
    assert len(issued["items"]) == 200 and issued["next_cursor"]


# --- lists -------------------------------------------------------------------------------


def test_a_list_page_holds_about_a_mib_of_json_and_the_rest_follows(vendors):
    vendor = vendors.create()
    product = vendor.product()
    protected = {"custom_data": {"protected": _protected(MAX_PROTECTED_BYTES)}}
    created = [vendor.template(protected, product=product)["id"] for _ in range(70)]
    first = vendor.get("/templates?limit=200")
    assert first.status_code == 200
    assert len(first.content) <= MAX_PAGE_BYTES + 1024  # the items, and the page around them
    page = first.json()
    assert 50 < len(page["items"]) < 70 and page["next_cursor"]  # cut by bytes, not rows
    seen = [item["id"] for item in page["items"]]
    while page["next_cursor"]:
        page = vendor.ok("GET", f"/templates?limit=200&cursor={page['next_cursor']}")
        seen += [item["id"] for item in page["items"]]
    assert seen == created  # each once, in order
