"""The failed jobs page in a real browser against a real server: an admin finds a mail
that failed for good through the menu, retries it, and is told it was queued again;
the orders' list shows a cancelled order as cancelled."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from licentia.server.jobs.models import JobRow
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.browser import screenshot
from tests.integration.web.failed_jobs import SMTP_DOWN, failed_job
from tests.integration.web.pages import staff_user


def test_an_admin_retries_a_failed_mail_from_the_menu(
    page: Page, live_server: str, vendors: VendorFactory
):
    vendor = vendors.create()
    job_id = failed_job(vendor.database, vendor.id)
    order = vendor.order(external_order_id="ERP-CANCELLED")
    vendor.ok("POST", f"/orders/{order['id']}/actions/cancel", json={})
    page.goto(f"{live_server}/console/login")
    page.get_by_label("Vendor").fill(vendor.slug)
    page.get_by_label("E-mail").fill(staff_user(vendor))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("navigation").get_by_role("link", name="Orders", exact=True).click()
    row = page.get_by_role("row").filter(has_text="ERP-CANCELLED")
    expect(row.get_by_role("cell", name="cancelled", exact=True)).to_be_visible()
    page.get_by_role("navigation").get_by_role("link", name="Failed jobs", exact=True).click()
    expect(page.get_by_role("cell", name=SMTP_DOWN)).to_be_visible()
    screenshot(page, "console-failed-jobs")
    page.get_by_role("button", name="Retry").click()
    expect(page.get_by_role("status")).to_contain_text("queued again")
    expect(page.get_by_text("No failed jobs.")).to_be_visible()
    with vendor.database.read() as session:
        assert session.get_one(JobRow, job_id).status == "pending"
