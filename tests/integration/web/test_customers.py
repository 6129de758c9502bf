"""A customer sees only its own objects, even among the same vendor's customers: every
page that names an object by id is tampered with from another customer and vendor."""

from __future__ import annotations

from fastapi import FastAPI

from licentia.server.db.engine import Database
from tests.factories import VendorFactory, VendorHandle
from tests.integration.web.pages import (
    Browser,
    customer_with_admin,
    log_in_customer,
    log_in_staff,
    staff_user,
)


def customer_order(vendor: VendorHandle, customer_id: str) -> dict:
    return vendor.order(customer_id=customer_id)


def test_a_customer_admin_sees_their_companys_tickets_and_only_those(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine, me = customer_with_admin(database, vendor)
    theirs, _ = customer_with_admin(database, vendor)
    own = customer_order(vendor, mine)
    other = customer_order(vendor, theirs)
    browser = Browser(app)
    log_in_customer(browser, vendor, me)
    home = browser.get(f"/portal/{vendor.slug}/").text
    assert own["ticket_code"] in home and other["ticket_code"] not in home
    page = browser.get(f"/portal/{vendor.slug}/tickets/{own['ticket_id']}")
    assert page.status_code == 200 and own["ticket_code"] in page.text
    assert "state-available" in page.text


def test_another_customers_ticket_of_the_same_vendor_is_not_found(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    _, me = customer_with_admin(database, vendor)
    theirs, _ = customer_with_admin(database, vendor)
    other = customer_order(vendor, theirs)
    browser = Browser(app)
    log_in_customer(browser, vendor, me)
    page = browser.get(f"/portal/{vendor.slug}/tickets/{other['ticket_id']}")
    assert page.status_code == 404 and "NOT_FOUND" in page.text
    assert other["ticket_code"] not in page.text


def test_an_own_ticket_under_another_vendors_address_is_not_shown(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor, elsewhere = vendors.create(), vendors.create()
    mine, me = customer_with_admin(database, vendor)
    own = customer_order(vendor, mine)
    browser = Browser(app)
    log_in_customer(browser, vendor, me)
    page = browser.get(f"/portal/{elsewhere.slug}/tickets/{own['ticket_id']}")
    assert page.status_code == 303  # no customer of that vendor is logged in: to its login
    assert page.headers["location"] == f"/portal/{elsewhere.slug}/login"


def test_a_ticket_page_needs_a_customer_login(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    order = vendor.order()
    page = Browser(app).get(f"/portal/{vendor.slug}/tickets/{order['ticket_id']}")
    assert page.status_code == 303


def test_a_vendors_staff_session_is_no_customer_session(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    order = vendor.order()
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor))
    page = browser.get(f"/portal/{vendor.slug}/tickets/{order['ticket_id']}")
    assert page.status_code == 303
