"""The vendor console's main journey in a real browser against a real server, on
SQLite and on PostgreSQL: staff log in, create a product and a template, enter an
order, mail the ticket's code; the mail arrives at an SMTP server, and the customer
redeems the code from it in the portal. Screenshots of each page, desktop and phone,
English and German."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.inbox import Inbox
from tests.integration.web.pages import staff_user

CODE = re.compile(r"[0-9A-Z]{5}(?:-[0-9A-Z]{5}){4}")


def log_in(page: Page, live_server: str, slug: str, email: str) -> None:
    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(slug)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def test_staff_sell_a_product_and_the_customer_redeems_the_mailed_code(
    page: Page, live_server: str, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    vendor.ok("POST", "/customers", json={"name": "Acme Corp", "email": "buyer@acme.test"})
    log_in(page, live_server, vendor.slug, staff_user(vendor))

    page.get_by_role("link", name="Products").click()
    page.get_by_label("Code", exact=True).fill("STUDIO")
    page.get_by_label("Name", exact=True).fill("Studio")
    page.get_by_label("Features").fill("base\npro Professional")
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_role("status")).to_have_text("Created.")
    screenshot(page, "console-product")

    page.get_by_role("link", name="New template").click()
    page.get_by_label("SKU").fill("STUDIO-1Y")
    page.get_by_label("Name", exact=True).fill("Studio, one year")
    page.get_by_label("base", exact=True).check()
    page.get_by_label("pro", exact=True).check()
    page.get_by_label("How long a license is valid").select_option("days_from_issue")
    page.get_by_label("Days", exact=True).fill("365")
    page.get_by_label("Refresh interval in days").fill("60")  # longer than the lease
    page.get_by_role("button", name="Create template").click()
    problem = page.locator("#f-options\\.refresh_days-problem")
    expect(problem).to_contain_text("VALIDATION_FAILED")
    screenshot(page, "console-template-error")
    page.get_by_label("Refresh interval in days").fill("7")
    page.get_by_role("button", name="Create template").click()
    expect(page.get_by_role("status")).to_have_text("Created.")
    screenshot(page, "console-template")

    page.get_by_role("link", name="Orders").click()
    page.get_by_role("link", name="Enter an order").click()
    page.get_by_label("Customer").select_option(label="Acme Corp")
    page.get_by_label("Template of line 1").select_option("STUDIO-1Y")
    page.get_by_label("Quantity of line 1").fill("2")
    screenshot(page, "console-order-form")
    page.get_by_role("button", name="Place order").click()
    expect(page.get_by_text("The order was placed")).to_be_visible()
    expect(page.get_by_role("cell", name="available")).to_have_count(2)
    expect(page.get_by_label("To")).to_have_value("buyer@acme.test")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("The code was sent.")).to_be_visible()
    screenshot(page, "console-ticket")

    [message] = inbox.messages
    assert message["To"] == "buyer@acme.test"
    [code] = CODE.findall(inbox.text_of(message))
    portal = re.search(r"http://\S+/portal/\S+/", inbox.text_of(message))
    assert portal and portal.group(0).endswith(f"/portal/{vendor.slug}/")

    customer = page.context.browser.new_context(locale="en-GB")  # type: ignore[union-attr]
    redeeming = customer.new_page()
    redeeming.goto(f"{live_server}/portal/{vendor.slug}/")
    redeeming.get_by_label("Ticket codes").fill(code)
    redeeming.get_by_role("button", name="Show licenses").click()
    expect(redeeming.get_by_role("heading", name="Your licenses")).to_be_visible()
    expect(redeeming.get_by_role("cell", name="available")).to_have_count(2)
    customer.close()


def test_the_console_pages_read_well_on_a_phone_and_in_german(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme Corp"})
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer["id"])
    log_in(page, live_server, vendor.slug, staff_user(vendor))
    pages = {
        "console-dashboard": "/console/",
        "console-products": "/console/products",
        "console-templates": "/console/templates",
        "console-template-form": f"/console/templates/{template['id']}",
        "console-customers": "/console/customers",
        "console-customer": f"/console/customers/{customer['id']}",
        "console-orders": "/console/orders",
        "console-ticket": f"/console/tickets/{order['ticket_id']}",
    }
    for language in ("en", "de"):
        page.goto(f"{live_server}/language/{language}?next=/console/")
        for width in ("desktop", "phone"):
            page.set_viewport_size({"width": WIDTHS[width], "height": 900})
            for name, path in pages.items():
                page.goto(f"{live_server}{path}")
                expect(page.locator("h1")).to_be_visible()
                overflow = page.evaluate("document.documentElement.scrollWidth")
                assert overflow <= WIDTHS[width], (name, width)
                suffix = "" if language == "en" else "-de"
                screenshot(page, f"{name}{suffix}")
    expect(page.get_by_role("link", name="Produkte")).to_be_visible()  # German, at last


def test_the_customer_list_filters_as_staff_type(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    for name in ("Acme Corp", "Zeta Works"):
        vendor.ok("POST", "/customers", json={"name": name})
    log_in(page, live_server, vendor.slug, staff_user(vendor))
    page.goto(f"{live_server}/console/customers")
    page.get_by_label("Search by name, e-mail or external id").fill("zeta")  # no button
    expect(page.get_by_role("link", name="Acme Corp")).to_have_count(0)
    expect(page.get_by_role("link", name="Zeta Works")).to_be_visible()
    expect(page).to_have_url(f"{live_server}/console/customers?q=zeta")  # the filter stays
