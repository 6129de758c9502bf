"""The console's audit log: filters in the address, an object's history, and the chain
verified with the result shown (and a tampered event found)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import update

from licentia.server.audit.models import AuditEvent
from tests.factories import VendorFactory
from tests.integration.web.console import staff_browser


def test_filter_by_object_and_action(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    first, second = vendor.license(), vendor.license()
    vendor.ok("POST", f"/licenses/{first['id']}/actions/suspend")
    browser = staff_browser(app, vendor)
    page = browser.get(f"/console/audit?object_type=license&object_id={first['id']}")
    assert "license.suspended" in page.text and second["id"][:13] not in page.text
    assert f'value="{first["id"]}"' in page.text  # the filter stays in the form
    page = browser.get("/console/audit?action=license.suspended")
    assert first["id"][:13] in page.text and second["id"][:13] not in page.text
    wrong = browser.get("/console/audit?since=yesterday")
    assert wrong.status_code == 422 and "VALIDATION_FAILED" in wrong.text


def test_verify_the_chain_and_see_a_tampered_event(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    license_ = vendor.license()
    vendor.ok("POST", f"/licenses/{license_['id']}/actions/suspend")
    browser = staff_browser(app, vendor)
    intact = browser.get("/console/audit/verify")
    assert intact.status_code == 200 and "The chain is intact" in intact.text
    with vendor.database.transaction() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.chain == vendor.id, AuditEvent.action == "license.suspended")
            .values(after={"state": "available"})
        )
    broken = browser.get("/console/audit/verify")
    assert 'role="alert" id="chain-result"' in broken.text
    assert "The chain is broken at event" in broken.text and "intact" not in broken.text


def test_only_the_vendors_own_events_are_shown(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    license_ = theirs.license()
    browser = staff_browser(app, mine)
    page = browser.get(f"/console/audit?object_type=license&object_id={license_['id']}")
    assert page.status_code == 200 and "license.issued" not in page.text


def test_a_sales_member_does_not_see_the_audit_log(app: FastAPI, vendors: VendorFactory):
    browser = staff_browser(app, vendors.create(), "sales")
    assert browser.get("/console/audit").status_code == 403
    assert browser.get("/console/audit/verify").status_code == 403
