"""The web shops page in a real browser against a real server: staff connect Stripe,
map a price, and the sale Stripe then sends shows as an order whose ticket opens."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import screenshot
from tests.integration.web.pages import staff_user
from tests.support.shops import STRIPE_SECRET, checkout_session, stripe_event, stripe_header


def test_staff_connect_stripe_map_a_price_and_open_the_ticket_of_a_sale(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(staff_user(vendor))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation").get_by_role("link", name="Web shops", exact=True).click()
    stripe = page.get_by_role("region", name="Stripe")
    stripe.get_by_label("Signing secret").fill(STRIPE_SECRET)
    stripe.get_by_label("When a sale is refunded").select_option("withdraw")
    stripe.get_by_role("button", name="Connect Stripe").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    events_url = page.locator("#events-url-stripe").inner_text()
    assert events_url.endswith(f"/api/v1/vendors/{vendor.slug}/shops/stripe/events")
    page.get_by_label("Price or product id").fill("price_journey")
    page.get_by_label("SKU", exact=True).fill(sku)
    page.get_by_role("button", name="Map the price").click()
    expect(page.get_by_role("cell", name="price_journey", exact=True)).to_be_visible()
    body = stripe_event("checkout.session.completed", checkout_session([("price_journey", 2)]))
    sent = httpx.post(
        f"{live_server}/api/v1/vendors/{vendor.slug}/shops/stripe/events",
        content=body,
        headers={"Stripe-Signature": stripe_header(body), "Content-Type": "application/json"},
    )
    assert sent.status_code == 200, sent.text
    page.reload()
    screenshot(page, "console-shops")
    page.get_by_role("link", name="order_created").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ticket")
