"""The console's main journey in a real browser against a real server, on SQLite and on
PostgreSQL: staff find a license by filter, suspend and resume it, and process an
offline request file made by the real client SDK; a read-only member sees the pages
but no action, and a post of theirs is refused."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from licentia.client import LicenseClient, Virtualization
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.pages import staff_user

MACHINE = {
    "machine_id": "5d1c4e7f0a9b48e2a3c6d8f1b2e4a7c9",
    "product_uuid": "8f0e2a6c-1b3d-4e5f-9a7b-2c4d6e8f0a1b",
    "mac_addresses": "3c:52:82:4d:5e:6f",
    "disk_serial": "S4EWNX0R654321",
    "hostname": "lab-07",
}


def _log_in(page: Page, server: str, vendor: VendorHandle, email: str) -> None:
    page.goto(f"{server}/console/login")
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def _nav(page: Page, name: str) -> None:
    page.get_by_role("navigation").get_by_role("link", name=name, exact=True).click()


def _offline_device(server: str, vendor: VendorHandle, root: Path) -> LicenseClient:
    jwks = httpx.get(f"{server}/api/v1/vendors/{vendor.slug}/jwks.json").json()
    return LicenseClient(
        None,
        vendor.slug,
        jwks,
        store_dir=root / "store",
        factor_source=lambda: dict(MACHINE),
        virtualization_probe=lambda: Virtualization(vm=None),
    )


def test_staff_suspend_and_resume_a_license_found_by_filter(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    product = vendor.product()
    vendor.order([{"sku": vendor.template(product=product)["sku"], "quantity": 1}])
    vendor.license()  # another product's license, which the filter leaves out
    _log_in(page, live_server, vendor, staff_user(vendor))
    _nav(page, "Licenses")
    page.get_by_label("Product code").fill(product["code"])
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(f"product={product['code']}"))
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    screenshot(page, "console-licenses")
    rows.get_by_role("link").first.click()
    page.get_by_role("button", name="Suspend").click()
    expect(page.get_by_role("status")).to_contain_text("suspended")
    expect(page.locator("#license-actions")).to_contain_text(
        "not possible while the license is suspended"
    )
    screenshot(page, "console-license")
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_role("status")).to_contain_text("resumed")
    expect(page.locator("dd .state")).to_have_text("available")
    expect(page.get_by_role("cell", name="license.resumed")).to_be_visible()


def test_staff_process_an_offline_request_made_by_the_client_sdk(
    page: Page, live_server: str, vendors: VendorFactory, tmp_path: Path
):
    vendor = vendors.create()
    order = vendor.order()
    device = _offline_device(live_server, vendor, tmp_path)
    try:
        request = device.create_offline_request(
            tmp_path / "licentia-request.jws", order["ticket_code"]
        )
        _log_in(page, live_server, vendor, staff_user(vendor, "support"))
        _nav(page, "Offline files")
        page.get_by_label("Request file").set_input_files(str(request))
        with page.expect_download() as download:
            page.get_by_role("button", name="Process and download the update").click()
        update = tmp_path / download.value.suggested_filename
        download.value.save_as(update)
        receipt = device.import_update(update)
        (entitlement,) = device.licenses()
        assert device.require(entitlement.product).license_id == entitlement.license_id
        page.get_by_label("Receipt file").set_input_files(str(receipt))
        page.get_by_role("button", name="Accept the receipt").click()
        expect(page.locator("#offline-result")).to_contain_text("confirmed update 1")
        screenshot(page, "console-offline")
    finally:
        device.close()


def test_a_read_only_member_sees_but_cannot_act(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = vendor.license()
    _log_in(page, live_server, vendor, staff_user(vendor, "read-only"))
    page.goto(f"{live_server}/console/licenses/{license_['id']}")
    expect(page.get_by_role("heading", name="Actions")).to_be_visible()
    expect(page.get_by_role("button", name="Suspend")).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.input_value()
    answer = page.request.post(
        f"{live_server}/console/licenses/{license_['id']}/suspend", form={"csrf_token": token}
    )
    assert answer.status == 403 and "FORBIDDEN" in answer.text()
    assert vendor.ok("GET", f"/licenses/{license_['id']}")["state"] == "available"


def test_the_console_reads_well_on_a_phone_and_a_desktop_in_german(
    chromium: Browser, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = vendor.license()
    context = chromium.new_context(
        locale="de-DE", viewport={"width": WIDTHS["phone"], "height": 800}
    )
    page = context.new_page()
    try:
        page.goto(f"{live_server}/console/login")
        page.get_by_label("Hersteller").fill(vendor.slug)
        page.get_by_label("E-Mail").fill(staff_user(vendor))
        page.get_by_label("Passwort").fill(PASSWORD)
        page.get_by_role("button", name="Anmelden").click()
        for path, name in (
            ("/console/licenses", "console-licenses-de"),
            (f"/console/licenses/{license_['id']}", "console-license-de"),
            ("/console/devices", "console-devices-de"),
            ("/console/offline", "console-offline-de"),
            ("/console/api-keys", "console-api-keys-de"),
            ("/console/staff", "console-staff-de"),
            ("/console/audit", "console-audit-de"),
        ):
            page.set_viewport_size({"width": WIDTHS["phone"], "height": 800})
            page.goto(f"{live_server}{path}")
            expect(page.locator("html")).to_have_attribute("lang", "de")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= WIDTHS["phone"], path  # nothing sticks out sideways
            screenshot(page, name)
            page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
            screenshot(page, name)  # and at desktop width
    finally:
        context.close()


def test_withdrawing_asks_to_confirm_first_even_without_javascript(
    chromium: Browser, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    license_id = vendor.license()["id"]
    context = chromium.new_context(locale="en-GB", java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        _log_in(page, live_server, vendor, staff_user(vendor))
        page.goto(f"{live_server}/console/licenses/{license_id}")
        page.get_by_role("link", name="Withdraw…").click()
        expect(page.get_by_role("heading", name="Withdraw this license?")).to_be_visible()
        screenshot(page, "console-license-withdraw")
        button = page.get_by_role("button", name="Withdraw the license for good")
        button.click()  # the box is not ticked: the browser does not send the form
        expect(page).to_have_url(re.compile(f"/licenses/{license_id}/withdraw$"))
        assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "available"
        page.get_by_label("I understand: a withdrawn license cannot be brought back.").check()
        button.click()
        expect(page.get_by_role("status")).to_contain_text("withdrawn")
        assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "withdrawn"
    finally:
        context.close()
