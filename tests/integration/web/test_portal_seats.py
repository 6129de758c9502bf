"""Seats in the portal: who holds which seat now, borrowed seats, refused requests, and
a seat the customer admin frees, which its holder loses at its next heartbeat."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.server.db.engine import Database
from tests.factories import VendorFactory
from tests.integration.device_messages import BareDevice
from tests.integration.test_cloud import CloudUser
from tests.integration.web.cloud_desk import customer_container
from tests.integration.web.pages import Browser, log_in_customer


def test_the_customer_admin_sees_who_holds_which_seat_and_the_refusals(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, mine.credential)
    assert user.checkout(mine.product, "ann", device="office-pc").status_code == 201
    assert user.checkout(mine.product, "bob").status_code == 409
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    page = browser.get(f"/portal/{vendor.slug}/containers/{mine.container_id}/seats")
    assert page.status_code == 200
    assert "ann" in page.text and "office-pc" in page.text
    # the refused user by name, not by the seat's holder key (u:bob)
    assert re.search(r'data-label="Who asked">bob</td>', page.text) and "u:bob" not in page.text


def test_a_freed_seat_is_lost_by_its_holder_at_the_next_heartbeat(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, mine.credential)
    lease = user.checkout(mine.product, "ann").json()
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}/seats"
    done = browser.submit(here, f"{here}/{lease['lease_id']}/release", {})
    assert done.status_code == 303 and done.headers["location"] == here
    assert "ann" not in browser.get(here).text
    assert user.heartbeat(lease["lease_id"], lease["fence"]).json()["code"] == "SEAT_LOST"
    assert user.checkout(mine.product, "bob").status_code == 201


def test_freeing_a_seat_that_is_free_already_says_so(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, mine.credential)
    lease = user.checkout(mine.product, "ann").json()
    assert user.release(lease["lease_id"], lease["fence"]).status_code == 204
    browser = Browser(app, language="de")
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}/seats"
    again = browser.submit(here, f"{here}/{lease['lease_id']}/release", {})
    assert again.status_code == 404 and "LEASE_NOT_FOUND" in again.text
    assert "Dieser Platz ist schon frei" in again.text


def test_a_borrowed_seat_is_listed_as_borrowed(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=2, max_borrow_days=7)
    user, laptop = CloudUser(vendor, mine.credential), BareDevice(vendor.slug)
    body = {"product": mine.product, "user": "ann", "days": 3, "request": laptop.request("sync")}
    lent = user._post("borrow", json=body)
    assert lent.status_code == 201, lent.text
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    page = browser.get(f"/portal/{vendor.slug}/containers/{mine.container_id}/seats").text
    assert "borrowed for offline use" in page and "ann on " in page


def test_freeing_a_seat_without_the_forms_token_is_refused(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, mine.credential)
    lease = user.checkout(mine.product, "ann").json()
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    path = f"/portal/{vendor.slug}/containers/{mine.container_id}/seats/{lease['lease_id']}/release"
    refused = browser.client.post(path, data={"csrf_token": "forged"})
    assert refused.status_code == 403 and "CSRF_FAILED" in refused.text
    assert user.heartbeat(lease["lease_id"], lease["fence"]).status_code == 200


def test_another_customers_seats_cannot_be_seen_or_freed(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor, elsewhere = vendors.create(), vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=1)
    theirs = customer_container(database, vendor, delivery="seat_pool", seats=1)
    user = CloudUser(vendor, theirs.credential)
    lease = user.checkout(theirs.product, "ann").json()
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    own = f"/portal/{vendor.slug}/containers/{mine.container_id}/seats"
    other = f"/portal/{vendor.slug}/containers/{theirs.container_id}/seats"
    assert browser.get(other).status_code == 404
    assert browser.submit(own, f"{other}/{lease['lease_id']}/release", {}).status_code == 404
    moved = browser.submit(own, f"{own}/{lease['lease_id']}/release", {})
    assert moved.status_code == 404 and "LEASE_NOT_FOUND" in moved.text
    foreign = browser.get(f"/portal/{elsewhere.slug}/containers/{theirs.container_id}/seats")
    assert foreign.status_code == 303
    assert user.heartbeat(lease["lease_id"], lease["fence"]).status_code == 200
