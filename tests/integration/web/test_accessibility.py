"""axe-core (vendored from the npm registry under tests/support/axe) finds no serious
or critical accessibility violation on any main page of the console and the portal,
each with something to show, in a real browser, in English."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, Page

from licentia.server.db.engine import Database
from licentia.server.password_resets.services import Realm, request_reset
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import WIDTHS
from tests.integration.web.pages import customer_with_admin, staff_user
from tests.integration.web.showcase import console_pages, portal_pages

AXE = Path(__file__).resolve().parents[2] / "support" / "axe" / "axe.min.js"
SERIOUS = {"serious", "critical"}
HOUR = timedelta(hours=1)


@pytest.fixture
def checked_page(chromium: Browser) -> Iterator[Page]:
    """A page whose Content-Security-Policy lets the test inject axe (the pages allow
    only this site's scripts, rightly)."""
    context = chromium.new_context(
        locale="en-GB", viewport={"width": WIDTHS["desktop"], "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def shown(page: Page, url: str) -> None:
    """Open ``url`` and make sure it is the page itself (not a login page or an error)."""
    answer = page.goto(url)
    assert answer is not None and answer.status == 200, url
    assert page.url == url


def violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document)).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [violation for violation in found if violation["impact"] in SERIOUS]


def test_every_console_page_has_no_serious_accessibility_violation(
    checked_page: Page, live_server: str, vendors: VendorFactory
):
    page = checked_page
    vendor = vendors.create()
    paths = console_pages(vendor)
    page.goto(f"{live_server}/console/login")
    assert violations(page) == [], "login"
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(staff_user(vendor))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    for path in paths:
        shown(page, f"{live_server}{path}")
        assert violations(page) == [], path


def test_every_portal_page_of_a_customer_admin_has_no_serious_violation(
    checked_page: Page, live_server: str, vendors: VendorFactory, database: Database
):
    page = checked_page
    vendor = vendors.create()
    showcase = portal_pages(database, vendor)
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_label("E-mail").fill(showcase.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    for path in showcase.pages:
        shown(page, f"{live_server}{path}")
        assert violations(page) == [], path


def test_the_start_page_and_the_portals_front_door_have_no_serious_violation(
    checked_page: Page, live_server: str, vendors: VendorFactory
):
    page = checked_page
    vendor = vendors.create()
    code = vendor.order()["ticket_code"]
    for path in ("/", f"/portal/{vendor.slug}/", f"/portal/{vendor.slug}/login"):
        page.goto(f"{live_server}{path}")
        assert violations(page) == [], path
    page.goto(f"{live_server}/portal/{vendor.slug}/")
    page.get_by_label("Ticket codes").fill(code)
    page.get_by_role("button", name="Show licenses").click()
    assert violations(page) == [], "the ticket's licenses"


def test_the_password_and_two_step_login_pages_have_no_serious_violation(
    checked_page: Page, live_server: str, vendors: VendorFactory, database: Database
):
    page = checked_page
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    _, customer_email = customer_with_admin(database, vendor)
    now = datetime.now(UTC)
    with database.transaction() as session:
        links = [
            request_reset(session, realm, vendor_slug=vendor.slug, email=who, ttl=HOUR, now=now)
            for realm, who in ((Realm.STAFF, email), (Realm.CUSTOMER, customer_email))
        ]
    for path in (
        "/console/forgot",
        "/console/forgot?sent=1",
        f"/portal/{vendor.slug}/forgot",
        f"/portal/{vendor.slug}/forgot?sent=1",
        *(link.path() for link in links if link is not None),
    ):
        shown(page, f"{live_server}{path}")
        assert violations(page) == [], path

    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    shown(page, f"{live_server}/console/totp")
    assert violations(page) == [], "two-step login, off"
    page.get_by_role("button", name="Set up two-step login").click()
    assert violations(page) == [], "two-step login, enrolling"
    page.get_by_label("Code").fill(pyotp.TOTP(page.locator("#totp-secret").inner_text()).now())
    page.get_by_role("button", name="Confirm and turn on").click()
    assert violations(page) == [], "the recovery codes"
    shown(page, f"{live_server}/console/totp")
    assert violations(page) == [], "two-step login, on"
    page.get_by_role("button", name="Log out").click()
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    assert page.url == f"{live_server}/console/login/code"
    assert violations(page) == [], "the code after the password"
