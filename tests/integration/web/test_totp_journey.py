"""Two-step login in a real browser against a real server, on SQLite and on
PostgreSQL: a staff member turns TOTP on with the key the page shows, keeps the
recovery codes, logs out, and logs in again with the password and then the code."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import Page, expect

from licentia.server.totp.services import STEP_SECONDS
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import screenshot
from tests.integration.web.pages import staff_user


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
