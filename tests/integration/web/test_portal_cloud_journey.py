"""A customer admin frees, in a real browser, the seat a real SDK client holds; the
client learns it at its next heartbeat (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from licentia.client import CloudClient, SeatLostError, redeem_cloud_ticket
from licentia.server.db.engine import Database
from tests.factories import PASSWORD, VendorFactory
from tests.integration.test_cloud import CloudUser
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.cloud_desk import customer_container
from tests.integration.web.pages import customer_with_admin


def test_a_seat_freed_in_the_portal_is_lost_by_the_sdk_client_holding_it(
    page: Page, live_server: str, vendors: VendorFactory, database: Database, tmp_path: Path
):
    vendor = vendors.create()
    customer_id, email = customer_with_admin(database, vendor)
    template = vendor.template({"delivery": "seat_pool", "seats": 1})
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer_id)
    credential = redeem_cloud_ticket(live_server, vendor.slug, order["ticket_code"])
    ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    product = vendor.ok("GET", f"/licenses/{ticket['license_ids'][0]}")["product_code"]
    jwks = vendor.ok("GET", f"/vendors/{vendor.slug}/jwks.json")
    client = CloudClient(
        credential, public_keys=jwks, state_dir=tmp_path / "pc", device_name="office-pc"
    )
    try:
        with client.seat(product, user="ann") as seat:
            page.goto(f"{live_server}/portal/{vendor.slug}/login")
            page.get_by_label("E-mail").fill(email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("link", name="Cloud containers").first.click()
            screenshot(page, "portal-containers")
            page.locator("main table a").first.click()
            expect(page.get_by_role("heading", name="Registered computers")).to_be_visible()
            screenshot(page, "portal-container")
            page.get_by_role("link", name="Seats", exact=True).click()
            expect(page.get_by_role("cell", name="ann", exact=True)).to_be_visible()
            # the computer by the name it registered with, not the device id the SDK
            # sends when the application names no computer for the seat
            expect(page.get_by_role("cell", name="office-pc", exact=True)).to_be_visible()
            screenshot(page, "portal-seats")
            page.get_by_role("button", name="Free the seat of ann").click()
            expect(page.get_by_text("No seat is in use.")).to_be_visible()
            with pytest.raises(SeatLostError):
                seat.heartbeat()
            assert seat.lost and seat.error is not None
            assert seat.error.server_code == "SEAT_LOST"
    finally:
        client.close()


def test_the_cloud_pages_read_well_on_a_phone_and_in_german(
    page: Page, live_server: str, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=2, units=50)
    user = CloudUser(vendor, mine.credential, "office-pc")
    assert user.checkout(mine.product, "ann", device="office-pc").status_code == 201
    assert user.consume(mine.product, 5, "job-1").status_code == 200
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_label("E-mail").fill(mine.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    container = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    pages = {
        "portal-containers": f"/portal/{vendor.slug}/containers",
        "portal-container": container,
        "portal-seats": f"{container}/seats",
        "portal-counters": f"{container}/counters",
        "portal-counter": f"{container}/counters/{mine.license_id}",
    }
    for language in ("en", "de"):
        page.goto(f"{live_server}/language/{language}?next={container}")
        for width in ("desktop", "phone"):
            page.set_viewport_size({"width": WIDTHS[width], "height": 900})
            for name, path in pages.items():
                page.goto(f"{live_server}{path}")
                expect(page.locator("h1")).to_be_visible()
                overflow = page.evaluate("document.documentElement.scrollWidth")
                assert overflow <= WIDTHS[width], (name, width)
                screenshot(page, name if language == "en" else f"{name}-de")
    page.goto(f"{live_server}{container}")
    expect(page.get_by_role("heading", name="Registrierte Computer")).to_be_visible()


def test_a_ticket_goes_into_a_new_container_whose_downloaded_file_the_sdk_uses(
    page: Page, live_server: str, vendors: VendorFactory, database: Database, tmp_path: Path
):
    vendor = vendors.create()
    customer_id, email = customer_with_admin(database, vendor)
    template = vendor.template({"delivery": "cloud"})
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer_id)
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.locator(f"a[href$='/tickets/{order['ticket_id']}']").click()
    page.get_by_label("Cloud container").select_option(label="A new cloud container")
    page.get_by_label("Name of a new container").fill("Studio")
    screenshot(page, "portal-ticket-cloud")
    page.get_by_role("button", name="Put the licenses into the container").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("new cloud container “Studio”")
    screenshot(page, "portal-container-made")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download Studio.licred").click()
    assert download.value.suggested_filename == "Studio.licred"
    licred = tmp_path / "Studio.licred"
    download.value.save_as(licred)

    jwks = vendor.ok("GET", f"/vendors/{vendor.slug}/jwks.json")
    product = vendor.ok("GET", f"/templates/{template['id']}")["product_code"]
    client = CloudClient(
        licred, public_keys=jwks, state_dir=tmp_path / "pc", server_url=live_server
    )
    try:
        assert client.check(product).license_id
    finally:
        client.close()
    ticket = page.get_by_role("link", name="Back to the ticket").get_attribute("href")
    page.get_by_role("link", name="Go to the container “Studio”").click()
    expect(page.get_by_role("heading", name="Studio")).to_be_visible()
    screenshot(page, "portal-container-new")
    page.goto(f"{live_server}{ticket}")
    expect(page.get_by_text("in the cloud container Studio")).to_be_visible()
    expect(page.get_by_role("button", name="Put the licenses into the container")).to_have_count(0)


def test_a_reset_credential_is_downloaded_in_the_browser_and_used_by_the_sdk(
    page: Page, live_server: str, vendors: VendorFactory, database: Database, tmp_path: Path
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud", max_devices=1)
    CloudUser(vendor, mine.credential, "old laptop")  # takes the one place
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_label("E-mail").fill(mine.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server}/portal/{vendor.slug}/containers/{mine.container_id}")
    page.get_by_label("I understand").check()
    screenshot(page, "portal-container-credential")
    with page.expect_download() as download:
        page.get_by_role("button", name="Reset the credential and download the new file").click()
    licred = tmp_path / download.value.suggested_filename
    download.value.save_as(licred)
    assert licred.suffix == ".licred"
    jwks = vendor.ok("GET", f"/vendors/{vendor.slug}/jwks.json")
    client = CloudClient(
        licred, public_keys=jwks, state_dir=tmp_path / "new", server_url=live_server
    )
    try:
        assert client.check(mine.product).license_id == mine.license_id
    finally:
        client.close()
    page.reload()
    expect(page.get_by_text("Registered with an old credential file")).to_be_visible()
