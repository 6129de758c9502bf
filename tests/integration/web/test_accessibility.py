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

from licentia.domain.actors import operator
from licentia.server.db.engine import Database
from licentia.server.devices.models import Device
from licentia.server.devices.services import CLONE, flag_device
from licentia.server.password_resets.services import Realm, request_reset
from tests.factories import PASSWORD, VendorFactory
from tests.integration.device_messages import activate_device
from tests.integration.test_cloud import CloudUser
from tests.integration.web.browser import WIDTHS
from tests.integration.web.cloud_desk import colleague, customer_container
from tests.integration.web.pages import customer_with_admin, staff_user

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
    customer = vendor.ok("POST", "/customers", json={"name": "Acme Corp"})
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer["id"])
    device_id = activate_device(vendor, vendor.order()["ticket_code"])
    with vendor.database.transaction() as session:
        device = session.get_one(Device, device_id)
        flag_device(session, operator(vendor.id), device, CLONE, "seen on other hardware")
    license_id = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"][0]
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
        "/console/licenses",
        "/console/licenses?state=activated",
        f"/console/licenses/{license_id}",
        "/console/devices",
        "/console/devices?flag=any",
        f"/console/devices/{device_id}",
        "/console/offline",
        "/console/api-keys",
        "/console/signing-keys",
        "/console/staff",
        "/console/audit",
        f"/console/audit?object_type=license&object_id={license_id}",
        "/console/audit/verify",
        "/console/branding",
    ):
        shown(page, f"{live_server}{path}")
        assert violations(page) == [], path


def test_every_portal_page_of_a_customer_admin_has_no_serious_violation(
    checked_page: Page, live_server: str, vendors: VendorFactory, database: Database
):
    page = checked_page
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="seat_pool", seats=2, units=50)
    user = CloudUser(vendor, mine.credential, "office-pc")
    assert user.checkout(mine.product, "ann", device="office-pc").status_code == 201
    assert user.consume(mine.product, 5, "job-1").status_code == 200
    template, cloud = vendor.template(), vendor.template({"delivery": "cloud"})
    lines = [{"sku": template["sku"], "quantity": 2}, {"sku": cloud["sku"], "quantity": 1}]
    order = vendor.order(lines, customer_id=mine.customer_id)  # the cloud form shows too
    colleague(database, vendor, mine.customer_id)
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_label("E-mail").fill(mine.admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    portal = f"/portal/{vendor.slug}"
    container = f"{portal}/containers/{mine.container_id}"
    for path in (
        f"{portal}/",
        f"{portal}/tickets/{order['ticket_id']}",
        f"{portal}/offline",
        f"{portal}/containers",
        container,
        f"{container}/seats",
        f"{container}/counters",
        f"{container}/counters/{mine.license_id}",
        f"{portal}/users",
    ):
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
