"""A vendor connects a system to webhooks in the console, in a real browser against a
real server: registers its receiver for two events, copies the secret shown once, sees
the receiver get a signed event, finds a failed delivery in the log with the
receiver's answer, and replays it, one and all failed at once. Screenshots, desktop
and phone."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from licentia.domain.webhooks import MAX_ATTEMPTS
from licentia.server.db.base import utcnow
from licentia.server.webhooks.delivery import Deliverer
from licentia.server.webhooks.egress import delivery_client
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.pages import staff_user
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver().start()
    yield started
    started.stop()


def test_staff_connect_a_receiver_and_replay_what_failed(
    page: Page,
    live_server: str,
    vendors: VendorFactory,
    receiver: WebhookReceiver,
    database,
    master,
    settings,
):
    vendor = vendors.create()
    template = vendor.template()
    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(staff_user(vendor))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()

    page.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_text("No webhook endpoint yet.")).to_be_visible()
    page.get_by_label("URL (https)").fill(receiver.url)
    page.get_by_label("Description (e.g. ERP)").fill("ERP")
    page.get_by_label("all events, also those added later").uncheck()
    page.get_by_label("order.created").check()
    page.get_by_label("license.suspended").check()
    page.get_by_role("button", name="Create the endpoint").click()
    secret = page.locator("#webhook-secret").inner_text()
    assert secret.startswith("whsec_")
    receiver.secrets.append(secret)
    screenshot(page, "console-webhook-created")
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name=receiver.url).click()
    expect(page.get_by_role("heading", name="Webhook endpoint")).to_be_visible()
    expect(page.locator("#webhook-secret")).to_have_count(0)  # shown once

    ahead = timedelta(0)
    with delivery_client(settings.webhook_targets, timeout=10) as http:
        deliverer = Deliverer(database, master, http, clock=lambda: utcnow() + ahead)
        vendor.order([{"sku": template["sku"], "quantity": 1}])
        deliverer.deliver_due()
        assert receiver.types() == ["order.created"]  # signed, verified by the receiver

        receiver.status = 500  # the receiver breaks: the next event fails for a day
        (license_id,) = [item["id"] for item in vendor.ok("GET", "/licenses")["items"]]
        vendor.ok("POST", f"/licenses/{license_id}/actions/suspend", json={})
        for _ in range(MAX_ATTEMPTS):
            deliverer.deliver_due()
            ahead += timedelta(hours=7)
        receiver.status = 204

        page.reload()
        expect(page.get_by_text("disabled after failing for a day")).to_be_visible()
        row = page.get_by_role("row").filter(has_text="license.suspended")
        expect(row.get_by_role("cell", name="failed")).to_be_visible()
        row.get_by_text("Show").click()
        expect(row.get_by_text("receiver says hello")).to_be_visible()
        screenshot(page, "console-webhook-log")
        page.get_by_role("button", name="Enable").click()
        expect(page.get_by_role("status")).to_contain_text("The endpoint is enabled")

        row = page.get_by_role("row").filter(has_text="license.suspended")
        row.get_by_role("button", name="Replay").click()
        expect(page.get_by_role("status")).to_have_text("The event will be sent again.")
        deliverer.deliver_due()
        assert receiver.types() == ["order.created", "license.suspended"]

        page.get_by_role("button", name="Replay failed").click()
        expect(page.get_by_role("status")).to_contain_text("0 failed events will be sent again.")

    page.set_viewport_size({"width": WIDTHS["phone"], "height": 900})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS["phone"]
    screenshot(page, "console-webhook-phone")
