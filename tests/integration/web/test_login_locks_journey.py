"""In a real browser against a real server: a colleague locked out after failed logins
is shown on the console's staff page with the time the lock ends, the admin unlocks
them, and they log in; desktop and phone, English and German."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from licentia.domain.errors import AuthenticationError
from licentia.server.db.base import utcnow
from licentia.server.logins.bounded import log_in_staff_outside_transactions
from licentia.server.logins.services import ThrottlePolicy
from licentia.server.tenancy.passwords import PasswordChecks
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.pages import staff_user


def _lock(vendor: VendorHandle, email: str) -> None:
    """Five wrong passwords, each from an address of its own (the server's own address
    keeps its count for the other browser tests)."""
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            log_in_staff_outside_transactions(
                vendor.database,
                PasswordChecks(1),
                vendor_slug=vendor.slug,
                email=email,
                password="wrong password!",
                source_ip=f"2001:db8::{secrets.token_hex(2)}",
                ttl=timedelta(hours=1),
                policy=ThrottlePolicy(),
                now=utcnow(),
            )


def _log_in(page: Page, live_server: str, slug: str, email: str) -> None:
    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def test_an_admin_sees_a_locked_colleague_until_when_and_unlocks_them(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    colleague = staff_user(vendor, "support")
    _lock(vendor, colleague)

    _log_in(page, live_server, vendor.slug, colleague)
    expect(page.get_by_text("LOGIN_LOCKED")).to_be_visible()
    expect(page.get_by_text("even for the right password")).to_be_visible()
    screenshot(page, "console-login-locked")

    _log_in(page, live_server, vendor.slug, staff_user(vendor))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    page.get_by_role("link", name="Staff").click()
    row = page.get_by_role("row").filter(has_text=colleague)
    expect(row.get_by_text("locked until")).to_be_visible()
    expect(row.get_by_text("5 failed logins in a row")).to_be_visible()
    for name, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        screenshot(page, f"console-staff-locked-{name}")
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})

    row.get_by_role("button", name=f"Unlock {colleague}").click()
    expect(page.get_by_role("status")).to_have_text(
        "The account is unlocked: it may log in again at once."
    )
    expect(page.get_by_role("row").filter(has_text=colleague)).to_contain_text("no failures")

    page.get_by_role("button", name="Log out").click()
    _log_in(page, live_server, vendor.slug, colleague)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_the_staff_page_in_german_shows_the_lock(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    colleague = staff_user(vendor, "sales")
    _lock(vendor, colleague)
    page.context.add_cookies([{"name": "licentia_lang", "value": "de", "url": live_server}])
    page.goto(f"{live_server}/console/login")
    page.locator("#f-vendor").fill(vendor.slug)
    page.locator("#f-email").fill(staff_user(vendor))
    page.locator("#f-password").fill(PASSWORD)
    page.locator('form[action="/console/login"] button[type=submit]').click()
    expect(page.locator("h1")).not_to_have_text("Vendor console: log in")
    page.goto(f"{live_server}/console/staff")
    row = page.get_by_role("row").filter(has_text=colleague)
    expect(row.get_by_text("gesperrt bis")).to_be_visible()
    expect(row.get_by_role("button", name=f"{colleague} entsperren")).to_be_visible()
    screenshot(page, "console-staff-locked-de")
