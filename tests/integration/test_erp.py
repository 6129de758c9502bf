"""What a vendor's ERP or CRM does besides single orders: orders in batches, each with
its own result; cancellations and returns; customers kept by their external id."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.factories import VendorFactory, VendorHandle
from tests.integration.device_messages import activate_device

PROBLEM = "application/problem+json"


def licenses_of(vendor: VendorHandle, ticket_id: str) -> dict[str, str]:
    """License id → state, for every license of the ticket."""
    items = vendor.ok("GET", "/licenses", params={"ticket_id": ticket_id, "limit": 200})["items"]
    return {item["id"]: item["state"] for item in items}


def order_count(vendor: VendorHandle) -> int:
    return len(vendor.ok("GET", "/orders", params={"limit": 200})["items"])


def bulk(vendor: VendorHandle, orders: list[dict[str, Any]]) -> dict[str, Any]:
    response = vendor.post("/orders/bulk", json={"orders": orders})
    assert response.status_code == 200, response.text
    return dict(response.json())


# --- orders in batches ---------------------------------------------------------------


def test_a_batch_places_the_good_orders_and_says_why_each_other_failed(
    vendors: VendorFactory,
) -> None:
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    answer = bulk(
        vendor,
        [
            {"external_order_id": "SO-1", "lines": [{"sku": sku, "quantity": 2}]},
            {"external_order_id": "SO-2", "lines": [{"sku": "NO-SUCH-SKU"}]},
            {"external_order_id": "SO-3", "lines": [{"sku": sku}], "customer_id": "nobody"},
            {"external_order_id": "SO-4", "lines": [{"sku": sku, "quantity": 3}]},
        ],
    )
    statuses = [(item["external_order_id"], item["status"]) for item in answer["results"]]
    assert statuses == [
        ("SO-1", "created"),
        ("SO-2", "failed"),
        ("SO-3", "failed"),
        ("SO-4", "created"),
    ]
    assert (answer["created"], answer["failed"]) == (2, 2)
    unknown_sku, unknown_customer = answer["results"][1]["problem"], answer["results"][2]["problem"]
    assert (unknown_sku["code"], unknown_sku["status"], unknown_sku["field"]) == (
        "UNKNOWN_SKU",
        422,
        "lines[0].sku",
    )
    assert (unknown_customer["code"], unknown_customer["status"]) == ("NOT_FOUND", 404)
    assert answer["results"][1]["order"] is None
    placed = answer["results"][3]["order"]
    assert len(licenses_of(vendor, placed["ticket_id"])) == 3
    listed = vendor.ok("GET", "/orders", params={"limit": 200})["items"]
    assert sorted(order["external_order_id"] for order in listed) == ["SO-1", "SO-4"]


def test_a_batch_sent_again_replays_every_order_and_creates_nothing(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    orders = [
        {"external_order_id": f"SO-{n}", "lines": [{"sku": sku, "quantity": n}]} for n in (1, 2, 3)
    ]
    first = bulk(vendor, orders)
    again = bulk(vendor, orders)
    assert [item["status"] for item in again["results"]] == ["replayed"] * 3
    assert [item["order"]["ticket_code"] for item in again["results"]] == [
        item["order"]["ticket_code"] for item in first["results"]
    ]
    assert order_count(vendor) == 3
    ticket = first["results"][2]["order"]["ticket_id"]
    assert len(licenses_of(vendor, ticket)) == 3


def test_an_order_of_a_batch_with_new_lines_is_extended_and_a_changed_line_fails(
    vendors: VendorFactory,
) -> None:
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    bulk(vendor, [{"external_order_id": "SO-7", "lines": [{"sku": sku, "line_id": "10"}]}])
    answer = bulk(
        vendor,
        [
            {
                "external_order_id": "SO-7",
                "lines": [{"sku": sku, "line_id": "10"}, {"sku": sku, "line_id": "20"}],
            },
            {"external_order_id": "SO-7", "lines": [{"sku": sku, "line_id": "10", "quantity": 9}]},
        ],
    )
    extended, changed = answer["results"]
    assert (extended["status"], extended["order"]["added_lines"]) == ("extended", ["20"])
    assert (changed["status"], changed["problem"]["code"]) == ("failed", "ORDER_LINE_CONFLICT")
    assert len(licenses_of(vendor, extended["order"]["ticket_id"])) == 2


def test_a_batch_names_customers_by_external_id_and_upserts_them(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    answer = bulk(
        vendor,
        [
            {
                "external_order_id": "SO-1",
                "lines": [{"sku": sku}],
                "customer": {"external_id": "KD-100", "name": "Müller GmbH"},
            },
            {
                "external_order_id": "SO-2",
                "lines": [{"sku": sku}],
                "customer": {"external_id": "KD-100"},
            },
            {
                "external_order_id": "SO-3",
                "lines": [{"sku": sku}],
                "customer": {"external_id": "KD-999"},
            },
        ],
    )
    assert [item["status"] for item in answer["results"]] == ["created", "created", "failed"]
    (customer,) = vendor.ok("GET", "/customers", params={"external_id": "KD-100"})["items"]
    assert customer["name"] == "Müller GmbH"
    assert {item["order"]["customer_id"] for item in answer["results"][:2]} == {customer["id"]}


def test_a_batch_over_the_license_limit_is_refused_whole_before_anything_is_placed(
    vendors: VendorFactory,
) -> None:
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    orders = [
        {"external_order_id": f"SO-{n}", "lines": [{"sku": sku, "quantity": 1000}]}
        for n in range(6)
    ]
    response = vendor.post("/orders/bulk", json={"orders": orders})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "BULK_TOO_LARGE"
    assert order_count(vendor) == 0


def test_a_batch_of_more_than_100_orders_is_refused_whole(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    orders = [{"external_order_id": f"SO-{n}", "lines": [{"sku": "X"}]} for n in range(101)]
    response = vendor.post("/orders/bulk", json={"orders": orders})
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == ("VALIDATION_FAILED", "orders")


def test_two_identical_batches_racing_create_each_order_once(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    orders = [{"external_order_id": f"SO-{n}", "lines": [{"sku": sku}]} for n in range(5)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: bulk(vendor, orders), range(4)))
    for n in range(5):
        outcomes = sorted(answer["results"][n]["status"] for answer in answers)
        assert outcomes == ["created", "replayed", "replayed", "replayed"]
        assert len({answer["results"][n]["order"]["id"] for answer in answers}) == 1
    assert order_count(vendor) == 5


# --- cancellations and returns -------------------------------------------------------


@pytest.fixture
def sold(vendors: VendorFactory) -> tuple[VendorHandle, dict[str, Any], str]:
    """An order of two lines (10: three licenses, 20: two), one license of the first
    line activated on a device; and that license's id."""
    vendor = vendors.create()
    sku_a, sku_b = vendor.template()["sku"], vendor.template()["sku"]
    order = vendor.order(
        [
            {"sku": sku_a, "quantity": 3, "line_id": "10"},
            {"sku": sku_b, "quantity": 2, "line_id": "20"},
        ]
    )
    activate_device(vendor, order["ticket_code"])
    activated = [
        i for i, state in licenses_of(vendor, order["ticket_id"]).items() if state == "activated"
    ]
    assert len(activated) >= 1
    return vendor, order, activated[0]


def test_cancelling_withdraws_unused_licenses_and_suspends_activated_ones_when_asked(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, _ = sold
    before = licenses_of(vendor, order["ticket_id"])
    answer = vendor.ok(
        "POST", f"/orders/{order['id']}/actions/cancel", json={"activated": "suspend"}
    )
    assert answer["cancellation"] is True and answer["replayed"] is False
    after = licenses_of(vendor, order["ticket_id"])
    for license_id, state in before.items():
        assert after[license_id] == ("suspended" if state == "activated" else "withdrawn")
    reported = {item["license_id"]: item["outcome"] for item in answer["licenses"]}
    assert reported == {
        i: ("suspended" if s == "activated" else "withdrawn") for i, s in before.items()
    }


def test_a_cancellation_sent_again_is_answered_the_same_and_another_one_is_refused(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, _ = sold
    path = f"/orders/{order['id']}/actions/cancel"
    first = vendor.ok("POST", path, json={})
    again = vendor.ok("POST", path, json={})
    assert again == {**first, "replayed": True}
    other = vendor.post(path, json={"activated": "suspend"})
    assert (other.status_code, other.json()["code"]) == (409, "RETURN_CONFLICT")
    assert set(licenses_of(vendor, order["ticket_id"]).values()) == {"withdrawn"}


def test_a_cancelled_order_takes_no_new_lines_but_answers_a_replay(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, _ = sold
    vendor.ok("POST", f"/orders/{order['id']}/actions/cancel", json={})
    known = vendor.ok("GET", f"/orders/{order['id']}")
    lines = [
        {"sku": x["sku"], "quantity": x["quantity"], "line_id": x["line_id"]}
        for x in known["lines"]
    ]
    body = {"external_order_id": order["external_order_id"], "lines": lines}
    assert vendor.post("/orders", json=body).status_code == 200
    grown = {**body, "lines": [*lines, {"sku": lines[0]["sku"], "line_id": "30"}]}
    refused = vendor.post("/orders", json=grown)
    assert (refused.status_code, refused.json()["code"]) == (409, "ORDER_CANCELLED")
    assert len(licenses_of(vendor, order["ticket_id"])) == 5


def test_a_return_takes_back_unused_licenses_of_a_line_first(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, activated = sold
    answer = vendor.ok(
        "POST",
        f"/orders/{order['id']}/actions/return",
        json={"return_id": "RMA-1", "lines": [{"line_id": "10", "quantity": 2}]},
    )
    assert [item["outcome"] for item in answer["licenses"]] == ["withdrawn", "withdrawn"]
    assert activated not in {item["license_id"] for item in answer["licenses"]}
    assert {item["line_id"] for item in answer["licenses"]} == {"10"}
    states = licenses_of(vendor, order["ticket_id"])
    assert states[activated] == "activated"
    assert sorted(states.values()).count("withdrawn") == 2


def test_a_return_sent_again_changes_nothing_and_one_id_with_other_content_is_refused(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, _ = sold
    path = f"/orders/{order['id']}/actions/return"
    body = {"return_id": "RMA-2", "lines": [{"line_id": "20", "quantity": 1}]}
    first = vendor.ok("POST", path, json=body)
    again = vendor.ok("POST", path, json=body)
    assert again == {**first, "replayed": True}
    assert list(licenses_of(vendor, order["ticket_id"]).values()).count("withdrawn") == 1
    changed = vendor.post(path, json={**body, "lines": [{"line_id": "20", "quantity": 2}]})
    assert (changed.status_code, changed.json()["code"]) == (409, "RETURN_CONFLICT")
    second = vendor.ok("POST", path, json={**body, "return_id": "RMA-3"})
    assert second["licenses"][0]["license_id"] != first["licenses"][0]["license_id"]
    too_many = vendor.post(path, json={**body, "return_id": "RMA-4"})
    assert (too_many.status_code, too_many.json()["code"]) == (409, "RETURN_EXCEEDS_LINE")
    assert too_many.json()["returnable"] == 0


def test_the_state_machines_refusals_are_reported_per_license(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, activated = sold
    unused = next(i for i, s in licenses_of(vendor, order["ticket_id"]).items() if s == "available")
    vendor.ok("POST", f"/licenses/{unused}/actions/withdraw")
    vendor.ok("POST", f"/licenses/{activated}/actions/suspend")
    answer = vendor.ok(
        "POST",
        f"/orders/{order['id']}/actions/return",
        json={"return_id": "RMA-5", "license_ids": [unused, activated], "activated": "suspend"},
    )
    outcomes = {item["license_id"]: (item["outcome"], item["code"]) for item in answer["licenses"]}
    assert outcomes == {
        unused: ("refused", "ILLEGAL_TRANSITION"),
        activated: ("withdrawn", None),  # a suspended license is no longer activated
    }


def test_a_return_of_a_license_of_another_order_or_an_unknown_line_changes_nothing(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, _ = sold
    stranger = vendor.license()["id"]
    path = f"/orders/{order['id']}/actions/return"
    before = licenses_of(vendor, order["ticket_id"])
    refused = [
        vendor.post(path, json={"return_id": "R-6", "license_ids": [stranger]}),
        vendor.post(path, json={"return_id": "R-7", "lines": [{"line_id": "99"}]}),
        vendor.post(path, json={"return_id": "R-8"}),
    ]
    assert [(r.status_code, r.json()["code"]) for r in refused] == [
        (404, "NOT_FOUND"),
        (404, "NOT_FOUND"),
        (422, "VALIDATION_FAILED"),
    ]
    assert licenses_of(vendor, order["ticket_id"]) == before
    assert vendor.ok("GET", f"/licenses/{stranger}")["state"] == "available"


def test_returns_and_cancellations_are_audited(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, _ = sold
    vendor.ok(
        "POST",
        f"/orders/{order['id']}/actions/return",
        json={"return_id": "RMA-9", "lines": [{"line_id": "20"}]},
    )
    vendor.ok("POST", f"/orders/{order['id']}/actions/cancel", json={})
    events = vendor.ok("GET", "/audit-events", params={"object_id": order["id"], "limit": 200})[
        "items"
    ]
    actions = [event["action"] for event in events]
    assert "order.returned" in actions and "order.cancelled" in actions
    returned = next(event for event in events if event["action"] == "order.returned")
    assert (returned["after"]["return_id"], returned["after"]["withdrawn"]) == ("RMA-9", 2)
    withdrawn = vendor.ok(
        "GET", "/audit-events", params={"action": "license.withdrawn", "limit": 200}
    )
    assert len(withdrawn["items"]) == 5


def test_concurrent_identical_returns_take_back_licenses_once(
    sold: tuple[VendorHandle, dict[str, Any], str],
) -> None:
    vendor, order, _ = sold
    body = {"return_id": "RMA-R", "lines": [{"line_id": "10", "quantity": 1}]}
    path = f"/orders/{order['id']}/actions/return"
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: vendor.post(path, json=body), range(6)))
    assert {answer.status_code for answer in answers} == {200}
    assert sorted(answer.json()["replayed"] for answer in answers) == [False] + [True] * 5
    assert list(licenses_of(vendor, order["ticket_id"]).values()).count("withdrawn") == 1


# --- customers by external id --------------------------------------------------------


def test_putting_a_customer_by_external_id_creates_then_updates_it(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    path = "/customers/by-external-id/KD-4711"
    created = vendor.request("PUT", path, json={"name": "Acme", "email": "it@acme.example"})
    assert created.status_code == 201
    same = vendor.request("PUT", path, json={"name": "Acme", "email": "it@acme.example"})
    assert (same.status_code, same.json()) == (200, created.json())
    renamed = vendor.request("PUT", path, json={"name": "Acme AG"})
    assert renamed.status_code == 200
    assert (renamed.json()["id"], renamed.json()["name"], renamed.json()["email"]) == (
        created.json()["id"],
        "Acme AG",
        None,
    )
    listed = vendor.ok("GET", "/customers", params={"external_id": "KD-4711"})["items"]
    assert [c["id"] for c in listed] == [created.json()["id"]]
    events = vendor.ok("GET", "/audit-events", params={"object_id": created.json()["id"]})["items"]
    assert [event["action"] for event in events] == ["customer.created", "customer.updated"]


def test_a_customer_external_id_is_one_whatever_its_unicode_form(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    composed, decomposed = "KD-M\u00fcller", "KD-Mu\u0308ller"
    first = vendor.request("PUT", f"/customers/by-external-id/{composed}", json={"name": "A"})
    second = vendor.request("PUT", f"/customers/by-external-id/{decomposed}", json={"name": "B"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["external_id"] == composed


def test_an_external_id_with_an_invisible_character_is_refused(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    response = vendor.request("PUT", "/customers/by-external-id/KD\u200b1", json={"name": "A"})
    assert (response.status_code, response.json()["code"]) == (422, "IDENTIFIER_INVALID")
    assert vendor.ok("GET", "/customers")["items"] == []


def test_concurrent_puts_of_one_new_customer_make_one_customer(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda _: vendor.request(
                    "PUT", "/customers/by-external-id/KD-1", json={"name": "A"}
                ),
                range(8),
            )
        )
    assert len({a.json()["id"] for a in answers}) == 1, [a.text for a in answers]
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len(vendor.ok("GET", "/customers")["items"]) == 1


def test_vendors_upsert_the_same_external_id_into_customers_of_their_own(
    vendors: VendorFactory,
) -> None:
    a, b = vendors.create(), vendors.create()
    mine = a.request("PUT", "/customers/by-external-id/KD-1", json={"name": "A's"}).json()
    theirs = b.request("PUT", "/customers/by-external-id/KD-1", json={"name": "B's"})
    assert theirs.status_code == 201 and theirs.json()["id"] != mine["id"]
    assert a.ok("GET", f"/customers/{mine['id']}")["name"] == "A's"
