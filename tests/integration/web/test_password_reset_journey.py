"""A forgotten password in a real browser against a real server, on SQLite and on
PostgreSQL: a customer user and a staff member each ask for a link on the login page,
the mail arrives at an SMTP server, and the link sets the password they log in with."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Page, expect

from licentia.server.db.engine import Database
from tests.factories import VendorFactory
from tests.integration.web.browser import screenshot
from tests.integration.web.inbox import Inbox
from tests.integration.web.pages import customer_with_admin, staff_user

NEW_PASSWORD = "journey-password-2026"


def _link_path(inbox: Inbox, front: str) -> str:
    """The path of the link in the first mail (the server mails it after answering)."""
    deadline = time.monotonic() + 15
    while not inbox.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert inbox.messages, "no mail arrived"
    found = re.search(
        rf"http://[^/\s]+(/{front}/\S+/reset/\S+|/{front}/reset/\S+)",
        inbox.text_of(inbox.messages[0]),
    )
    assert found, inbox.text_of(inbox.messages[0])
    return found.group(1)


def test_a_customer_user_sets_a_new_password_from_the_mailed_link(
    page: Page, live_server: str, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor = vendors.create()
    _, email = customer_with_admin(database, vendor)
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status")).to_contain_text("we have sent it a link")
    screenshot(page, "portal-forgot")

    page.goto(live_server + _link_path(inbox, "portal"))
    expect(page.get_by_text(email)).to_be_visible()
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("The same password again").fill(NEW_PASSWORD)
    screenshot(page, "portal-reset")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("status")).to_contain_text("Your new password is set")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(email)).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_a_staff_member_sets_a_new_password_from_the_mailed_link(
    page: Page, live_server: str, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    email = staff_user(vendor)
    page.goto(f"{live_server}/console/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("status")).to_contain_text("we have sent it a link")
    screenshot(page, "console-forgot")

    page.goto(live_server + _link_path(inbox, "console"))
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("The same password again").fill(NEW_PASSWORD)
    screenshot(page, "console-reset")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("status")).to_contain_text("Your new password is set")
    expect(page.get_by_label("Vendor")).to_have_value(vendor.slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
