"""Unit counters in the portal: each balance and its ledger, the customer's own only."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.server.db.engine import Database
from tests.factories import VendorFactory
from tests.integration.test_cloud import CloudUser
from tests.integration.web.cloud_desk import customer_container
from tests.integration.web.pages import Browser, log_in_customer


def test_the_customer_admin_reads_the_balance_and_the_ledger(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud", units=100)
    user = CloudUser(vendor, mine.credential)
    assert user.consume(mine.product, 3, "k1").status_code == 200
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}/counters"
    listed = browser.get(here)
    assert listed.status_code == 200
    assert mine.license_id in listed.text and re.search(r"<td[^>]*>97</td>", listed.text)
    template_id = vendor.ok("GET", f"/licenses/{mine.license_id}")["template_id"]
    name = vendor.ok("GET", f"/templates/{template_id}")["name"]
    assert f"{name} · {mine.product}" in listed.text  # the template beside the product
    ledger = browser.get(f"{here}/{mine.license_id}")
    assert ledger.status_code == 200
    assert "Units granted" in ledger.text and "+100" in ledger.text
    assert "Used" in ledger.text and "-3" in ledger.text


def test_a_license_without_units_is_no_counter(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}/counters"
    assert "No license of this container counts units." in browser.get(here).text
    page = browser.get(f"{here}/{mine.license_id}")
    assert page.status_code == 404 and "NO_COUNTER" in page.text


def test_another_customers_counter_is_not_found(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor, elsewhere = vendors.create(), vendors.create()
    mine = customer_container(database, vendor, delivery="cloud", units=10)
    theirs = customer_container(database, vendor, delivery="cloud", units=10)
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    own = f"/portal/{vendor.slug}/containers/{mine.container_id}/counters"
    other = f"/portal/{vendor.slug}/containers/{theirs.container_id}/counters"
    assert browser.get(other).status_code == 404
    assert browser.get(f"{other}/{theirs.license_id}").status_code == 404
    moved = browser.get(f"{own}/{theirs.license_id}")
    assert moved.status_code == 404 and "NOT_FOUND" in moved.text
    foreign = browser.get(f"/portal/{elsewhere.slug}/containers/{mine.container_id}/counters")
    assert foreign.status_code == 303


def test_the_ledger_speaks_german(app: FastAPI, vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud", units=5)
    browser = Browser(app, language="de")
    log_in_customer(browser, vendor, mine.admin_email)
    path = f"/portal/{vendor.slug}/containers/{mine.container_id}/counters/{mine.license_id}"
    page = browser.get(path)
    assert "Einheiten gewährt" in page.text and "Übrige Einheiten: 5" in page.text
