"""Journeys through the web fronts in a real browser against a real server, on SQLite
and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.devices import offline_computer
from tests.integration.web.pages import staff_user


def test_staff_log_in_to_the_console_and_see_the_dashboard(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    email = staff_user(vendor)
    page.goto(f"{live_server}/")
    page.get_by_role("link", name="Log in to the console").click()
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    screenshot(page, "console-login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    screenshot(page, "console-dashboard")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Vendor console: log in")).to_be_visible()


def test_a_customer_redeems_a_code_and_a_typo_is_caught_in_the_browser(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    order = vendor.order()
    code = vendor.ok("POST", f"/tickets/{order['ticket_id']}/code")["code"]
    page.goto(f"{live_server}/portal/{vendor.slug}/")
    codes = page.get_by_label("Ticket codes")
    codes.fill(code[:6] + "U" + code[7:])
    page.get_by_role("button", name="Show licenses").click()
    expect(page.locator("#f-codes-problem")).to_contain_text("Symbol 6 (U)")
    expect(page).to_have_url(f"{live_server}/portal/{vendor.slug}/")  # nothing was sent
    screenshot(page, "portal-home-typo")
    codes.fill(code)
    page.get_by_role("button", name="Show licenses").click()
    expect(page.get_by_role("heading", name="Your licenses")).to_be_visible()
    expect(page.get_by_role("cell", name="available")).to_be_visible()
    screenshot(page, "portal-tickets")


def test_the_portal_reads_well_on_a_phone_in_german(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    page.set_viewport_size({"width": WIDTHS["phone"], "height": 800})
    page.goto(f"{live_server}/portal/{vendor.slug}/")
    page.get_by_role("link", name="Deutsch").click()
    expect(page.get_by_role("button", name="Lizenzen anzeigen")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTHS["phone"]  # nothing sticks out sideways
    screenshot(page, "portal-home-de")


def test_an_offline_computer_is_activated_by_file_through_the_portal(
    page: Page, live_server: str, vendors: VendorFactory, tmp_path: Path
):
    vendor = vendors.create()
    code = vendor.order()["ticket_code"]
    jwks = httpx.get(f"{live_server}/api/v1/vendors/{vendor.slug}/jwks.json").json()
    computer = offline_computer(vendor.slug, jwks, tmp_path / "store")
    request = computer.create_offline_request(tmp_path / "licentia-request.jws", ticket=code)

    page.goto(f"{live_server}/portal/{vendor.slug}/")
    page.get_by_role("link", name="Activate by file").click()
    page.get_by_label("Request file").set_input_files(request)
    screenshot(page, "portal-offline")
    with page.expect_download() as download:
        page.get_by_role("button", name="Upload the request and download the update").click()
    assert download.value.suggested_filename == "licentia-update.jws"
    update = tmp_path / "licentia-update.jws"
    download.value.save_as(update)

    receipt = computer.import_update(update)  # on the offline computer
    (entitlement,) = computer.licenses()
    page.get_by_label("Receipt file").set_input_files(receipt)
    page.get_by_role("button", name="Upload the receipt").click()
    expect(page.locator("#outcome")).to_contain_text("confirmed update 1")
    screenshot(page, "portal-offline-confirmed")
    license_ = vendor.ok("GET", f"/licenses/{entitlement.license_id}")
    assert license_["state"] == "activated"
    computer.close()
