"""The console's failed jobs: an admin sees the jobs that failed for good for its own
vendor (kind, last error, attempts, when) and queues one again with Retry, a form
with its CSRF token; another vendor's jobs and the server's own are neither listed nor
retried, and members who are not admins do not see the page. The orders' list shows
each order's status, cancelled and returned ones included. In English and German."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from licentia.server.audit.models import AuditEvent
from licentia.server.jobs.models import JobRow
from licentia.server.orders.models import Order
from tests.factories import VendorFactory
from tests.integration.web.console import post_forms, staff_browser
from tests.integration.web.failed_jobs import SMTP_DOWN, failed_job
from tests.integration.web.pages import Browser, log_in_staff, staff_user

PAGE = "/console/jobs"


def job(database, job_id: str) -> JobRow:
    with database.read() as session:
        return session.get_one(JobRow, job_id)


def test_an_admin_sees_its_vendors_failed_jobs_and_no_one_elses(
    app: FastAPI, vendors: VendorFactory
):
    vendor, other = vendors.create(), vendors.create()
    mine = failed_job(vendor.database, vendor.id)
    issuing = failed_job(vendor.database, vendor.id, "orders.issue", "IntegrityError: boom")
    theirs = failed_job(vendor.database, other.id, error="theirs: smtp.other.example")
    servers = failed_job(vendor.database, None, "seats.sweep", "the server's own: sweep")
    page = staff_browser(app, vendor).get(PAGE)
    assert page.status_code == 200
    assert SMTP_DOWN in page.text and "IntegrityError: boom" in page.text
    assert "Sending an e-mail" in page.text and "Issuing a large order" in page.text
    assert "theirs" not in page.text and "the server's own" not in page.text
    assert sorted(post_forms(page.text)) == sorted(
        f"{PAGE}/{job_id}/retry" for job_id in (mine, issuing)
    )
    assert "c2VhbGVk" not in page.text  # a job's payload is never shown
    assert {theirs, servers}.isdisjoint(page.text.split('"'))


def test_retry_queues_the_job_again_with_all_its_attempts_and_audits_it(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    job_id = failed_job(vendor.database, vendor.id)
    browser = staff_browser(app, vendor)
    answer = browser.submit(PAGE, f"{PAGE}/{job_id}/retry", {})
    assert answer.status_code == 303 and answer.headers["location"].startswith(PAGE)
    again = job(vendor.database, job_id)
    assert (again.status, again.attempts, again.finished_at) == ("pending", 0, None)
    shown = browser.get(answer.headers["location"])
    assert "queued again" in shown.text and SMTP_DOWN not in shown.text
    with vendor.database.read() as session:
        audited = session.scalars(
            select(AuditEvent).where(AuditEvent.chain == vendor.id, AuditEvent.object_id == job_id)
        ).one()
    assert audited.action == "job.retried" and audited.after == {"kind": "mail.send"}
    # a second retry finds no failed job: it is pending already
    assert browser.submit(PAGE, f"{PAGE}/{job_id}/retry", {}).status_code == 404


def test_a_retry_needs_the_forms_token_the_vendors_own_job_and_an_admin(
    app: FastAPI, vendors: VendorFactory
):
    vendor, other = vendors.create(), vendors.create()
    theirs = failed_job(vendor.database, other.id)
    servers = failed_job(vendor.database, None, "seats.sweep")
    mine = failed_job(vendor.database, vendor.id)
    admin = staff_browser(app, vendor)
    assert admin.client.post(f"{PAGE}/{mine}/retry", data={}).status_code == 403  # no token
    for job_id in (theirs, servers):
        assert admin.submit(PAGE, f"{PAGE}/{job_id}/retry", {}).status_code == 404
    support = staff_browser(app, vendor, "support")
    assert support.get(PAGE).status_code == 403
    token = admin.token(PAGE)  # even with a valid token of the page, support may not
    refused = support.client.post(f"{PAGE}/{mine}/retry", data={"csrf_token": token})
    assert refused.status_code in (403, 404)
    for job_id in (theirs, servers, mine):
        assert job(vendor.database, job_id).status == "failed"


def test_the_orders_list_shows_processing_cancelled_and_returned_orders(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    done = vendor.order([{"sku": sku, "quantity": 2, "line_id": "1"}], external_order_id="DONE")
    cancelled = vendor.order([{"sku": sku}], external_order_id="GONE")
    returned = vendor.order([{"sku": sku, "quantity": 2, "line_id": "1"}], external_order_id="RMA")
    vendor.ok("POST", f"/orders/{cancelled['id']}/actions/cancel", json={})
    body = {"return_id": "R-1", "lines": [{"line_id": "1", "quantity": 1}]}
    vendor.ok("POST", f"/orders/{returned['id']}/actions/return", json=body)
    with vendor.database.transaction() as session:  # as a large order's is, until issued
        session.get_one(Order, done["id"]).status = "processing"
    rows = {
        external: row
        for row in staff_browser(app, vendor).get("/console/orders").text.split("<tr>")[2:]
        for external in ("DONE", "GONE", "RMA")
        if f">{external}<" in row
    }
    assert "processing" in rows["DONE"]
    assert "cancelled" in rows["GONE"]
    assert "partly returned" in rows["RMA"]


def test_both_pages_speak_german(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    failed_job(vendor.database, vendor.id)
    cancelled = vendor.order()
    vendor.ok("POST", f"/orders/{cancelled['id']}/actions/cancel", json={})
    browser = Browser(app, language="de")
    assert log_in_staff(browser, vendor, staff_user(vendor)).status_code == 303
    jobs = browser.get(PAGE).text
    assert "Gescheiterte Aufträge" in jobs and "Erneut versuchen" in jobs
    assert "E-Mail senden" in jobs
    assert "storniert" in browser.get("/console/orders").text
