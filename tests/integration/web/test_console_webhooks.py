"""The console's webhook pages: endpoints made with an event filter and their secret
shown once, refused receivers explained next to the URL, enabling, disabling,
rotating, deleting, the delivery log, and replays of one delivery and of every failed
one; read-only members look without acting, other vendors' endpoints are not found."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.server.webhooks.delivery import fan_out
from tests.factories import VendorFactory, VendorHandle
from tests.integration.web.console import post_forms, staff_browser, submit_many

SECRET = re.compile(r'id="webhook-secret">(whsec_[^<]+)<')
PAGE = "/console/webhooks"


def fan_out_all(vendor: VendorHandle) -> None:
    """The vendor's events become deliveries (after other tests' events, if any)."""
    with vendor.database.transaction() as session:
        while fan_out(session):
            pass


def endpoint_id_of(vendor: VendorHandle) -> str:
    (endpoint,) = vendor.ok("GET", "/webhook-endpoints")["items"]
    return str(endpoint["id"])


def test_an_endpoint_is_made_with_its_filter_and_its_secret_is_shown_once(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    data = {
        "url": "http://127.0.0.1:9/hooks",
        "description": "ERP",
        "event_types": ["order.created", "units.low"],
    }
    answer = submit_many(browser, PAGE, PAGE, data)
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    found = SECRET.search(answer.text)
    assert found and found.group(1).startswith("whsec_")
    (endpoint,) = vendor.ok("GET", "/webhook-endpoints")["items"]
    assert endpoint["event_types"] == ["order.created", "units.low"]
    assert endpoint["description"] == "ERP"
    for page in (PAGE, f"{PAGE}/{endpoint['id']}"):
        shown = browser.get(page)
        assert shown.status_code == 200 and found.group(1) not in shown.text


def test_a_forbidden_receiver_is_refused_next_to_the_url(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    data = {"url": "http://169.254.169.254/latest/", "event_types": ["*"]}
    answer = submit_many(browser, PAGE, PAGE, data)
    problem = answer.text.split('id="f-url-problem"')[1].split("</p>")[0]
    assert answer.status_code == 422 and "WEBHOOK_URL_FORBIDDEN" in problem
    assert not SECRET.search(answer.text)
    assert vendor.ok("GET", "/webhook-endpoints")["items"] == []
    none = submit_many(browser, PAGE, PAGE, {"url": "https://erp.example/hooks"})
    problem = none.text.split('id="f-event_types-problem"')[1].split("</p>")[0]
    assert none.status_code == 422 and "VALIDATION_FAILED" in problem


def test_disable_enable_rotate_and_delete(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    vendor.ok("POST", "/webhook-endpoints", json={"url": "https://erp.example/hooks"})
    endpoint_id = endpoint_id_of(vendor)
    browser = staff_browser(app, vendor)
    page = f"{PAGE}/{endpoint_id}"
    assert browser.submit(page, f"{page}/disable", {}).status_code == 303
    assert vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}")["enabled"] is False
    assert browser.submit(page, f"{page}/enable", {}).status_code == 303
    assert vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}")["enabled"] is True
    rotated = browser.submit(page, f"{page}/rotate", {"overlap_hours": "2"})
    assert rotated.status_code == 200 and SECRET.search(rotated.text)
    assert vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}")["previous_secret_until"]
    too_long = browser.submit(page, f"{page}/rotate", {"overlap_hours": "1000"})
    problem = too_long.text.split('id="f-overlap_hours-problem"')[1].split("</p>")[0]
    assert too_long.status_code == 422 and "VALIDATION_FAILED" in problem
    assert browser.submit(page, f"{page}/delete", {}).status_code == 303
    assert vendor.ok("GET", "/webhook-endpoints")["items"] == []


def test_the_log_shows_a_delivery_and_replays_it(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    vendor.ok("POST", "/webhook-endpoints", json={"url": "https://erp.example/hooks"})
    endpoint_id = endpoint_id_of(vendor)
    vendor.order()
    fan_out_all(vendor)
    browser = staff_browser(app, vendor)
    page = f"{PAGE}/{endpoint_id}"
    shown = browser.get(page)
    assert "order.created" in shown.text and "ticket.created" in shown.text
    assert "external_order_id" in shown.text  # the request's body
    deliveries = vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}/deliveries")["items"]
    replayed = browser.submit(page, f"/console/webhook-deliveries/{deliveries[0]['id']}/replay", {})
    assert replayed.status_code == 303
    after = vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}/deliveries")["items"]
    assert len(after) == len(deliveries) + 1
    bulk = browser.submit(page, f"{page}/replay-failed", {"since": "", "until": ""})
    assert bulk.status_code == 303 and "replayed=0" in bulk.headers["location"]
    bad = browser.submit(page, f"{page}/replay-failed", {"since": "yesterday", "until": ""})
    problem = bad.text.split('id="f-since-problem"')[1].split("</p>")[0]
    assert bad.status_code == 422 and "VALIDATION_FAILED" in problem


def test_a_read_only_member_looks_without_acting(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    vendor.ok("POST", "/webhook-endpoints", json={"url": "https://erp.example/hooks"})
    endpoint_id = endpoint_id_of(vendor)
    browser = staff_browser(app, vendor, "read-only")
    for page in (PAGE, f"{PAGE}/{endpoint_id}"):
        shown = browser.get(page)
        assert shown.status_code == 200 and post_forms(shown.text) == []
    page = f"{PAGE}/{endpoint_id}"
    assert browser.submit(page, f"{page}/disable", {}).status_code == 403
    assert vendor.ok("GET", f"/webhook-endpoints/{endpoint_id}")["enabled"] is True


def test_another_vendors_endpoint_is_not_found(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    theirs.ok("POST", "/webhook-endpoints", json={"url": "https://erp.example/hooks"})
    endpoint_id = endpoint_id_of(theirs)
    browser = staff_browser(app, mine)
    assert browser.get(f"{PAGE}/{endpoint_id}").status_code == 404
    page = f"{PAGE}/{endpoint_id}"
    assert browser.submit(PAGE, f"{page}/delete", {}).status_code == 404
    assert browser.submit(PAGE, f"{page}/replay-failed", {}).status_code == 404
    assert endpoint_id_of(theirs) == endpoint_id
