"""Every list of both fronts on a 390 px phone: one card per row (``table.stack``),
so that nothing scrolls sideways and every button in a list is on the screen."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from licentia.server.db.engine import Database
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import WIDTHS
from tests.integration.web.pages import staff_user
from tests.integration.web.showcase import console_pages, portal_pages

PHONE = WIDTHS["phone"]

# Per list on the page: how far its content reaches past its own box (a table inside a
# scrolling box scrolls there, not on the page), and where each of its buttons is.
LISTS = """() => [...document.querySelectorAll("main table")].map(table => ({
  overflow: table.scrollWidth - table.parentElement.clientWidth,
  buttons: [...table.querySelectorAll("button, a.button")].map(button => {
    const box = button.getBoundingClientRect();
    return {name: button.textContent.trim(), left: box.left, right: box.right,
            height: box.height};
  }),
}))"""


def lists_on(page: Page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(LISTS)
    return found


def check_lists(page: Page, url: str) -> int:
    """Open ``url`` at phone width; returns how many buttons its lists hold."""
    answer = page.goto(url)
    assert answer is not None and answer.status == 200, url
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE, url
    buttons = 0
    for table in lists_on(page):
        assert table["overflow"] <= 0, (url, table)
        for button in table["buttons"]:
            assert button["height"] > 0, (url, button)  # shown
            assert button["left"] >= 0 and button["right"] <= PHONE, (url, button)
            buttons += 1
    return buttons


def test_the_consoles_lists_fit_a_phone_with_their_actions_in_sight(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    paths = console_pages(vendor)
    page.set_viewport_size({"width": PHONE, "height": 800})
    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(staff_user(vendor))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    buttons = {path: check_lists(page, f"{live_server}{path}") for path in paths}
    assert buttons["/console/staff"] >= 3  # change the role, disable, for the colleague
    assert buttons["/console/signing-keys"] >= 1  # retire
    assert buttons["/console/api-keys"] >= 1  # revoke
    assert buttons["/console/jobs"] >= 1  # retry
    page.goto(f"{live_server}/console/staff")
    expect(page.get_by_role("button", name="Disable").first).to_be_in_viewport()


def test_the_portals_lists_fit_a_phone_with_their_actions_in_sight(
    page: Page, live_server: str, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    showcase = portal_pages(database, vendor)
    page.set_viewport_size({"width": PHONE, "height": 800})
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_label("E-mail").fill(showcase.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    buttons = {path: check_lists(page, f"{live_server}{path}") for path in showcase.pages}
    container, seats = showcase.pages[4], showcase.pages[5]
    assert buttons[container] >= 1  # deregister the computer
    assert buttons[seats] >= 1  # free the seat
