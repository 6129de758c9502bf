"""Two-step login in a real browser against a real server, on SQLite and on
PostgreSQL: a staff member turns TOTP on with the key the page shows, keeps the
recovery codes, logs out, and logs in again with the password and then the code; the
password and two-step pages in German at phone width."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pyotp
from playwright.sync_api import Browser, Page, expect

from licentia.server.db.engine import Database
from licentia.server.password_resets.services import Realm, request_reset
from licentia.server.totp.services import STEP_SECONDS
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.pages import customer_with_admin, staff_user


def test_a_staff_member_turns_on_two_step_login_and_logs_in_with_a_code(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Two-step login").click()
    page.get_by_role("button", name="Set up two-step login").click()
    expect(
        page.get_by_role("img", name="QR code of the key for your authenticator app")
    ).to_be_visible()
    screenshot(page, "console-totp-enrol")
    authenticator = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    page.get_by_label("Code").fill(authenticator.now())
    page.get_by_role("button", name="Confirm and turn on").click()
    expect(page.get_by_role("heading", name="Two-step login is on")).to_be_visible()
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(
        10
    )
    screenshot(page, "console-totp-recovery-codes")
    page.get_by_role("button", name="Log out").click()

    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Vendor console: your code")).to_be_visible()
    screenshot(page, "console-login-code")
    page.get_by_label("Code").fill(authenticator.at(time.time() + STEP_SECONDS))
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_the_password_and_two_step_pages_read_well_on_a_phone_in_german(
    chromium: Browser, live_server: str, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    _, customer_email = customer_with_admin(database, vendor)
    with database.transaction() as session:
        link = request_reset(
            session,
            Realm.CUSTOMER,
            vendor_slug=vendor.slug,
            email=customer_email,
            ttl=timedelta(hours=1),
            now=datetime.now(UTC),
        )
    assert link is not None
    context = chromium.new_context(
        locale="de-DE", viewport={"width": WIDTHS["phone"], "height": 800}
    )
    page = context.new_page()

    def check(name: str) -> None:
        expect(page.locator("html")).to_have_attribute("lang", "de")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= WIDTHS["phone"], name  # nothing sticks out sideways
        screenshot(page, name)

    try:
        for path, name in (
            ("/console/forgot", "console-forgot-de"),
            (f"/portal/{vendor.slug}/forgot", "portal-forgot-de"),
            (link.path(), "portal-reset-de"),
        ):
            page.goto(f"{live_server}{path}")
            check(name)
        page.goto(f"{live_server}/console/login")
        page.get_by_label("Hersteller").fill(vendor.slug)
        page.get_by_label("E-Mail").fill(email)
        page.get_by_label("Passwort").fill(PASSWORD)
        page.get_by_role("button", name="Anmelden").click()
        page.goto(f"{live_server}/console/totp")
        page.get_by_role("button", name="Zweistufige Anmeldung einrichten").click()
        check("console-totp-enrol-de")
        page.get_by_label("Code").fill(pyotp.TOTP(page.locator("#totp-secret").inner_text()).now())
        page.get_by_role("button", name="Bestätigen und einschalten").click()
        expect(
            page.get_by_role("heading", name="Die zweistufige Anmeldung ist ein")
        ).to_be_visible()
        check("console-totp-recovery-codes-de")
    finally:
        context.close()
