"""Console pages for customers: search, create, edit, and one customer with all their
tickets, licenses, cloud containers and devices; never another vendor's."""

from __future__ import annotations

from fastapi import FastAPI

from tests.factories import VendorFactory
from tests.integration.web.staff import console, created_id, field_problem


def test_staff_create_a_customer_and_find_it_by_part_of_its_name_or_email(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    vendor.ok("POST", "/customers", json={"name": "Zeta Works"})
    browser = console(app, vendor)
    answer = browser.submit(
        "/console/customers",
        "/console/customers",
        {"name": "Müller_Bau 100%", "external_id": "CRM-7", "email": "IT@mueller.test"},
    )
    assert answer.status_code == 303
    customer = vendor.ok("GET", f"/customers/{created_id(answer, 'customers')}")
    assert customer["external_id"] == "CRM-7" and customer["email"] == "IT@mueller.test"
    for query in ("müller_", "it@MUELLER", "crm-7", "100%"):
        found = browser.get("/console/customers", params={"q": query}).text
        assert "Müller_Bau" in found and "Zeta Works" not in found, query
    assert "Müller_Bau" not in browser.get("/console/customers", params={"q": "_x%"}).text


def test_a_customer_without_a_name_or_with_a_taken_external_id_is_refused_at_the_field(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    vendor.ok("POST", "/customers", json={"name": "First", "external_id": "CRM-1"})
    browser = console(app, vendor)
    blank = browser.submit("/console/customers", "/console/customers", {"name": "  "})
    assert blank.status_code == 422 and "VALIDATION_FAILED" in field_problem(blank.text, "name")
    taken = browser.submit(
        "/console/customers", "/console/customers", {"name": "Second", "external_id": "CRM-1"}
    )
    assert "ALREADY_EXISTS" in field_problem(taken.text, "external_id")


def test_a_customer_with_what_is_no_e_mail_address_is_refused_at_the_field(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = console(app, vendor)
    bad = browser.submit(
        "/console/customers", "/console/customers", {"name": "Z", "email": "notanemail"}
    )
    assert bad.status_code == 422 and "EMAIL_INVALID" in field_problem(bad.text, "email")
    assert vendor.ok("GET", "/customers")["items"] == []


def test_the_customer_page_shows_their_tickets_and_licenses_and_edits_them(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme"})
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 2}], customer_id=customer["id"])
    vendor.order()  # another customer's order is not shown
    page = f"/console/customers/{customer['id']}"
    browser = console(app, vendor)
    shown = browser.get(page).text
    assert order["external_order_id"] in shown and f"/console/tickets/{order['ticket_id']}" in shown
    assert "(2)" in shown  # the number of their licenses
    edited = browser.submit(page, page, {"name": "Acme GmbH", "email": "it@acme.test"})
    assert edited.status_code == 303
    assert vendor.ok("GET", f"/customers/{customer['id']}")["name"] == "Acme GmbH"
    cleared = browser.submit(page, page, {"name": ""})
    assert "VALIDATION_FAILED" in field_problem(cleared.text, "name")


def test_another_vendors_customer_is_not_found_and_cannot_be_edited(
    app: FastAPI, vendors: VendorFactory
):
    mine, theirs = vendors.create(), vendors.create()
    customer = theirs.ok("POST", "/customers", json={"name": "Theirs"})
    page = f"/console/customers/{customer['id']}"
    browser = console(app, mine)
    assert browser.get(page).status_code == 404
    assert browser.submit("/console/customers", page, {"name": "Stolen"}).status_code == 404
    assert theirs.ok("GET", f"/customers/{customer['id']}")["name"] == "Theirs"
    listed = browser.get("/console/customers").text
    assert "Theirs" not in listed


def test_a_read_only_member_sees_customers_but_cannot_create_or_edit_them(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme"})
    page = f"/console/customers/{customer['id']}"
    browser = console(app, vendor, "read-only")
    assert "New customer" not in browser.get("/console/customers").text
    assert browser.get(page).status_code == 200
    assert browser.submit(page, page, {"name": "Changed"}).status_code == 403
    denied = browser.submit("/console/customers", "/console/customers", {"name": "New"})
    assert denied.status_code == 403
