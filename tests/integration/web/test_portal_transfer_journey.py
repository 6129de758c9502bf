"""A license moves from one offline computer to another through the portal, in a real
browser: the moves its transfer limit leaves are read before the return is confirmed."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from licentia.client import LicenseClient
from tests.factories import VendorFactory
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.devices import offline_computer


def _activate_by_file(page: Page, computer: LicenseClient, code: str, folder: Path) -> str:
    folder.mkdir()
    request = computer.create_offline_request(folder / "licentia-request.jws", ticket=code)
    page.get_by_label("Request file").set_input_files(request)
    with page.expect_download() as download:
        page.get_by_role("button", name="Upload the request and download the update").click()
    update = folder / "licentia-update.jws"
    download.value.save_as(update)
    page.get_by_label("Receipt file").set_input_files(computer.import_update(update))
    page.get_by_role("button", name="Upload the receipt").click()
    expect(page.locator("#outcome")).to_contain_text("Its licenses are active")
    (entitlement,) = computer.licenses()
    return entitlement.license_id


def test_a_license_moves_to_another_computer_after_the_moves_left_are_shown(
    page: Page, live_server: str, vendors: VendorFactory, tmp_path: Path
):
    vendor = vendors.create()
    template = vendor.template({"transfer_limit": {"returns": 2, "period_days": 30}})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    jwks = httpx.get(f"{live_server}/api/v1/vendors/{vendor.slug}/jwks.json").json()
    old = offline_computer(vendor.slug, jwks, tmp_path / "old")
    new = offline_computer(vendor.slug, jwks, tmp_path / "new")
    offline = f"{live_server}/portal/{vendor.slug}/offline"

    page.goto(offline)
    license_id = _activate_by_file(page, old, code, tmp_path / "first")
    page.goto(f"{live_server}/portal/{vendor.slug}/")
    page.get_by_label("Ticket codes").fill(code)
    page.get_by_role("button", name="Show licenses").click()
    expect(page.get_by_role("cell", name="2 of 2 left (in any 30 days)")).to_be_visible()
    page.get_by_text("Move a license to another computer").click()
    screenshot(page, "portal-tickets-transfer")

    page.goto(offline)
    proof = old.create_return_file(license_id, tmp_path / "licentia-return.jws")
    page.get_by_label("Return file").set_input_files(proof)
    page.get_by_role("button", name="Upload the return file").click()
    preview = page.locator("#return-preview")
    expect(preview).to_contain_text("After this return, 1 move is left.")
    screenshot(page, "portal-return-preview")
    assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "activated"
    page.get_by_role("button", name="Return the license").click()
    expect(page.locator("#outcome")).to_contain_text(f"License {license_id} was returned")

    assert _activate_by_file(page, new, code, tmp_path / "second") == license_id
    assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "activated"
    page.set_viewport_size({"width": WIDTHS["phone"], "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS["phone"]
    old.close()
    new.close()
