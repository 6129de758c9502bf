"""Orders turn into tickets holding one license per ordered unit; they are idempotent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from licentia.server.audit.services import verify_chains
from licentia.server.catalog.models import Template
from tests.factories import VendorHandle


def test_an_order_creates_a_ticket_with_one_license_per_unit(vendors):
    vendor = vendors.create()
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 3}])
    assert order["created"] is True
    ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    assert len(ticket["license_ids"]) == 3
    states = {vendor.ok("GET", f"/licenses/{i}")["state"] for i in ticket["license_ids"]}
    assert states == {"available"}


def test_posting_the_same_order_again_returns_the_same_ticket_and_issues_nothing(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    body = {"external_order_id": "ERP-1", "lines": [{"sku": sku, "quantity": 2}]}
    first = vendor.post("/orders", json=body)
    again = vendor.post("/orders", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["ticket_id"] == first.json()["ticket_id"]
    assert again.json()["ticket_code"] == first.json()["ticket_code"]
    ticket = vendor.ok("GET", f"/tickets/{first.json()['ticket_id']}")
    assert len(ticket["license_ids"]) == 2


def test_new_lines_on_a_known_order_add_licenses_to_the_same_ticket(vendors):
    vendor = vendors.create()
    sku_a, sku_b = vendor.template()["sku"], vendor.template()["sku"]
    vendor.ok("POST", "/orders", json={"external_order_id": "ERP-2", "lines": [{"sku": sku_a}]})
    grown = vendor.ok(
        "POST",
        "/orders",
        json={
            "external_order_id": "ERP-2",
            "lines": [{"sku": sku_a}, {"sku": sku_b, "quantity": 2}],
        },
    )
    assert grown["added_lines"] == ["2"]
    assert len(vendor.ok("GET", f"/tickets/{grown['ticket_id']}")["license_ids"]) == 3


def test_a_known_line_with_another_quantity_is_a_conflict(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    vendor.ok("POST", "/orders", json={"external_order_id": "ERP-3", "lines": [{"sku": sku}]})
    response = vendor.post(
        "/orders", json={"external_order_id": "ERP-3", "lines": [{"sku": sku, "quantity": 5}]}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "ORDER_LINE_CONFLICT"


def test_an_unknown_sku_is_refused_with_the_field_named(vendors):
    vendor = vendors.create()
    response = vendor.post("/orders", json={"external_order_id": "E", "lines": [{"sku": "NOPE"}]})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "UNKNOWN_SKU"
    assert response.json()["field"] == "lines[0].sku"


def _post_order(vendor: VendorHandle, body: dict) -> tuple[int, str]:
    response = vendor.post("/orders", json=body)
    return response.status_code, response.json()["ticket_id"]


def test_twenty_concurrent_retries_of_one_order_make_exactly_one_order(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    body = {"external_order_id": "ERP-RACE", "lines": [{"sku": sku, "quantity": 1}]}
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda _: _post_order(vendor, body), range(20)))
    assert {ticket for _, ticket in results} == {results[0][1]}
    assert sorted(status for status, _ in results).count(201) == 1
    orders = vendor.ok("GET", "/orders", params={"external_order_id": "ERP-RACE"})["items"]
    assert len(orders) == 1
    assert len(vendor.ok("GET", f"/tickets/{results[0][1]}")["license_ids"]) == 1


def test_an_order_is_audited_row_by_row_in_the_order_it_was_written(vendors, database):
    vendor = vendors.create()
    sku_a, sku_b = vendor.template()["sku"], vendor.template()["sku"]
    order = vendor.order([{"sku": sku_a, "quantity": 2}, {"sku": sku_b, "line_id": "b"}])
    events = vendor.ok("GET", "/audit-events", params={"limit": 200})["items"]
    ours = [e for e in events if e["action"].startswith(("ticket.", "order.", "license."))]
    assert [e["action"] for e in ours] == [
        "ticket.created",
        "order.created",
        "license.issued",
        "license.issued",
        "order.line_added",
        "license.issued",
        "order.line_added",
    ]
    issued = {e["object_id"] for e in ours if e["action"] == "license.issued"}
    ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    assert issued == set(ticket["license_ids"])
    assert [(line["line_id"], line["quantity"]) for line in order["lines"]] == [("1", 2), ("b", 1)]
    with database.read() as session:
        assert verify_chains(session, vendor.id) == []


def test_the_placed_order_answers_as_the_stored_order_reads(vendors):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    placed = vendor.order([{"sku": sku, "quantity": 3}])
    stored = vendor.ok("GET", f"/orders/{placed['id']}")
    assert {k: placed[k] for k in stored} == stored
    assert (
        vendor.ok("POST", f"/tickets/{placed['ticket_id']}/code")["code"] == placed["ticket_code"]
    )
    found = vendor.ok("POST", "/tickets/lookup", json={"code": placed["ticket_code"]})
    assert found["id"] == placed["ticket_id"]


def test_an_order_for_a_template_whose_end_date_has_passed_is_refused(vendors):
    vendor = vendors.create()
    template = vendor.template({"validity": {"kind": "fixed_end", "end_date": "2999-12-31"}})
    end_date_passes(vendor, template["id"], "2020-06-30")
    body = {"external_order_id": "ERP-ENDED", "lines": [{"sku": template["sku"], "quantity": 2}]}
    answer = vendor.post("/orders", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert (problem["code"], problem["field"]) == ("END_DATE_PASSED", "lines[0].sku")
    assert "2020-06-30" in problem["detail"]
    assert vendor.ok("GET", "/orders?external_order_id=ERP-ENDED")["items"] == []


def test_an_order_placed_before_its_template_ended_is_still_answered_again(vendors):
    vendor = vendors.create()
    template = vendor.template({"validity": {"kind": "fixed_end", "end_date": "2999-12-31"}})
    body = {"external_order_id": "ERP-KEPT", "lines": [{"sku": template["sku"], "quantity": 1}]}
    first = vendor.ok("POST", "/orders", json=body)
    end_date_passes(vendor, template["id"], "2020-06-30")
    again = vendor.ok("POST", "/orders", json=body)
    assert (again["ticket_id"], again["added_lines"]) == (first["ticket_id"], [])


def end_date_passes(vendor: VendorHandle, template_id: str, end_date: str) -> None:
    """Time passes: the template's fixed end date now lies in the past (the API refuses
    to set a past date, so the test writes it as the calendar would have made it)."""
    with vendor.database.transaction() as session:
        template = session.get(Template, template_id)
        assert template is not None
        options = dict(template.options)
        options["validity"] = {**options["validity"], "end_date": end_date}
        template.options = options
