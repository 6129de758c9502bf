"""axe-core (vendored from the npm registry under tests/support/axe) finds no serious
or critical accessibility violation on the main pages, in a real browser."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import WIDTHS
from tests.integration.web.pages import staff_user

AXE = Path(__file__).resolve().parents[2] / "support" / "axe" / "axe.min.js"
SERIOUS = {"serious", "critical"}


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


def violations(page: Page) -> list[dict[str, Any]]:
    page.add_script_tag(content=AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document)).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [violation for violation in found if violation["impact"] in SERIOUS]


def test_the_console_pages_have_no_serious_accessibility_violation(
    checked_page: Page, live_server: str, vendors: VendorFactory
):
    page = checked_page
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme Corp"})
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer["id"])
    page.goto(f"{live_server}/console/login")
    assert violations(page) == [], "login"
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(staff_user(vendor))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    for path in (
        "/console/",
        "/console/products",
        f"/console/products/{template['product_id']}",
        "/console/templates",
        "/console/templates/new",
        f"/console/templates/{template['id']}",
        "/console/customers",
        f"/console/customers/{customer['id']}",
        "/console/orders",
        "/console/orders/new",
        "/console/tickets",
        f"/console/tickets/{order['ticket_id']}",
    ):
        page.goto(f"{live_server}{path}")
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
