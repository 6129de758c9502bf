"""Console pages for orders and tickets: an order entered by hand is the API's order
(idempotent by its external id), a ticket's code is shown and mailed to the customer
in the vendor's brand, and nothing of another vendor can be reached."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.formats.tickets import normalize_ticket_code
from tests.factories import VendorFactory
from tests.integration.web.inbox import Inbox
from tests.integration.web.staff import console, field_problem

CODE = re.compile(r"[0-9A-Z]{5}(?:-[0-9A-Z]{5}){4}")


def ticket_of(answer: object) -> str:
    location = answer.headers["location"]  # type: ignore[attr-defined]
    found = re.match(r"^/console/tickets/([0-9a-f-]+)\?order=(created|known)$", location)
    assert found, location
    return found.group(1)


def test_an_order_entered_by_hand_makes_a_ticket_and_sending_it_again_does_not(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    template = vendor.template()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme", "email": "buyer@acme.test"})
    browser = console(app, vendor)
    form_page = f"/console/orders/new?customer_id={customer['id']}"
    assert f'value="{customer["id"]}" selected' in browser.get(form_page).text
    order = {
        "external_order_id": "PHONE-17",
        "customer_id": customer["id"],
        "lines[0].sku": template["sku"],
        "lines[0].quantity": "3",
    }
    first = browser.submit(form_page, "/console/orders/new", order)
    again = browser.submit(form_page, "/console/orders/new", order)
    assert first.status_code == again.status_code == 303
    assert ticket_of(first) == ticket_of(again) and again.headers["location"].endswith("known")
    ticket = vendor.ok("GET", f"/tickets/{ticket_of(first)}")
    assert len(ticket["license_ids"]) == 3 and ticket["customer_id"] == customer["id"]
    [placed] = vendor.ok("GET", "/orders?external_order_id=PHONE-17")["items"]
    assert placed["lines"] == [{"line_id": "1", "sku": template["sku"], "quantity": 3}]
    listed = browser.get("/console/orders?external_order_id=PHONE-17").text
    line = f'3 \u00d7 <span class="mono">{template["sku"]}</span>'
    assert "PHONE-17" in listed and line in listed


def test_an_unknown_sku_is_shown_next_to_the_line_it_was_typed_in(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    template = vendor.template()
    browser = console(app, vendor)
    answer = browser.submit(
        "/console/orders/new",
        "/console/orders/new",
        {
            "external_order_id": "X-1",
            "lines[0].sku": template["sku"],
            "lines[2].sku": "NO-SUCH-SKU",
            "lines[2].quantity": "1",
        },
    )
    assert answer.status_code == 422
    assert "UNKNOWN_SKU" in field_problem(answer.text, "lines[2].sku")
    bad_quantity = browser.submit(
        "/console/orders/new",
        "/console/orders/new",
        {"external_order_id": "X-2", "lines[1].sku": template["sku"], "lines[1].quantity": "0"},
    )
    assert "VALIDATION_FAILED" in field_problem(bad_quantity.text, "lines[1].quantity")
    assert vendor.ok("GET", "/orders")["items"] == []


def test_the_ticket_page_shows_its_licenses_and_its_code_on_request(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    order = vendor.order()
    page = f"/console/tickets/{order['ticket_id']}"
    browser = console(app, vendor)
    shown = browser.get(page).text
    assert order["ticket_code"] not in shown and "available" in shown
    revealed = browser.submit(page, f"{page}/code", {})
    assert revealed.status_code == 200 and order["ticket_code"] in revealed.text
    events = vendor.ok("GET", f"/audit-events?object_id={order['ticket_id']}")["items"]
    assert "ticket.code_revealed" in [event["action"] for event in events]


def test_the_code_is_mailed_to_the_customer_in_the_vendors_brand(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme", "email": "buyer@acme.test"})
    order = vendor.order(customer_id=customer["id"])
    page = f"/console/tickets/{order['ticket_id']}"
    browser = console(app, vendor)
    assert 'value="buyer@acme.test"' in browser.get(page).text  # the customer's address
    answer = browser.submit(page, f"{page}/mail", {"to": "buyer@acme.test"})
    assert answer.status_code == 303 and answer.headers["location"].endswith("mailed=1")
    [message] = inbox.messages
    assert message["To"] == "buyer@acme.test" and vendor.slug in message["Subject"]
    text = inbox.text_of(message)
    [code] = CODE.findall(text)
    assert normalize_ticket_code(code) == normalize_ticket_code(order["ticket_code"])
    assert f"/portal/{vendor.slug}/" in text
    events = vendor.ok("GET", f"/audit-events?object_id={order['ticket_id']}")["items"]
    mailed = [event for event in events if event["action"] == "ticket.code_mailed"]
    assert mailed and mailed[0]["after"] == {"to": "buyer@acme.test"}


def test_a_wrong_address_or_a_mail_server_that_is_down_is_shown_next_to_the_address(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox, dead_server_url: str
):
    vendor = vendors.create()
    order = vendor.order()
    page = f"/console/tickets/{order['ticket_id']}"
    browser = console(app, vendor)
    answer = browser.submit(page, f"{page}/mail", {"to": "not an address"})
    assert answer.status_code == 422 and "EMAIL_INVALID" in field_problem(answer.text, "to")
    port = int(dead_server_url.rsplit(":", 1)[1])
    app.state.mailer.port = port  # the mail server goes away
    answer = browser.submit(page, f"{page}/mail", {"to": "buyer@acme.test"})
    assert answer.status_code == 502 and "MAIL_NOT_SENT" in field_problem(answer.text, "to")
    assert inbox.messages == []
    events = vendor.ok("GET", f"/audit-events?object_id={order['ticket_id']}")["items"]
    assert "ticket.code_mailed" not in [event["action"] for event in events]


def test_another_vendors_ticket_cannot_be_seen_shown_or_mailed(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    mine, theirs = vendors.create(), vendors.create()
    order = theirs.order()
    page = f"/console/tickets/{order['ticket_id']}"
    browser = console(app, mine)
    assert browser.get(page).status_code == 404
    assert browser.submit("/console/tickets", f"{page}/code", {}).status_code == 404
    mailed = browser.submit("/console/tickets", f"{page}/mail", {"to": "thief@evil.test"})
    assert mailed.status_code == 404 and inbox.messages == []
    other_customer = theirs.ok("POST", "/customers", json={"name": "Theirs"})
    template = mine.template()
    answer = browser.submit(
        "/console/orders/new",
        "/console/orders/new",
        {
            "external_order_id": "X-9",
            "customer_id": other_customer["id"],
            "lines[0].sku": template["sku"],
        },
    )
    assert answer.status_code == 422 and "NOT_FOUND" in answer.text


def test_a_read_only_member_sees_orders_and_tickets_but_not_codes(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    order = vendor.order()
    page = f"/console/tickets/{order['ticket_id']}"
    browser = console(app, vendor, "read-only")
    assert browser.get("/console/orders").status_code == 200
    shown = browser.get(page)
    assert shown.status_code == 200 and "Show the code" not in shown.text
    assert browser.submit(page, f"{page}/code", {}).status_code == 403
    assert browser.submit(page, f"{page}/mail", {"to": "a@b.test"}).status_code == 403
    assert browser.get("/console/orders/new").status_code == 403
    assert inbox.messages == []
