"""The console's offline page: a request file in and the update file out, a receipt and
a return file accepted, a file for another vendor refused."""

from __future__ import annotations

from fastapi import FastAPI

from licentia.formats.device import unverified_claims
from tests.factories import VendorFactory
from tests.integration.device_messages import BareDevice
from tests.integration.web.console import post_forms, staff_browser
from tests.integration.web.pages import Browser

PAGE = "/console/offline"


def _upload(browser: Browser, step: str, field: str, content: str):
    return browser.submit(PAGE, f"{PAGE}/{step}", {}, files={field: ("file.jws", content)})


def test_the_three_files_of_the_round_trip(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    order = vendor.order()
    device = BareDevice(vendor.slug)
    browser = staff_browser(app, vendor)
    update = _upload(
        browser, "request", "request_file", device.request("activate", order["ticket_code"])
    )
    assert update.status_code == 200
    assert "attachment" in update.headers["content-disposition"]
    claims = unverified_claims(update.text.strip())
    (document,) = claims["licenses"]
    license_id = str(unverified_claims(document)["sub"])
    device.seq, device.state = claims["seq"], claims["state"]
    receipt = _upload(browser, "receipt", "receipt_file", device.receipt(device.seq, device.state))
    assert receipt.status_code == 200 and f"confirmed update {device.seq}" in receipt.text
    returned = _upload(browser, "return", "return_file", device.return_proof(license_id))
    assert returned.status_code == 200 and license_id in returned.text
    assert vendor.ok("GET", f"/licenses/{license_id}")["state"] == "returned"


def test_a_bad_file_is_shown_next_to_its_field(app: FastAPI, vendors: VendorFactory):
    browser = staff_browser(app, vendors.create())
    answer = _upload(browser, "request", "request_file", "not a licentia file")
    problem = answer.text.split('id="f-request_file-problem"')[1].split("</p>")[0]
    assert answer.status_code in (401, 422) and "SIGNATURE_INVALID" in problem
    empty = browser.submit(PAGE, f"{PAGE}/receipt", {})
    assert empty.status_code == 422 and "VALIDATION_FAILED" in empty.text


def test_a_request_made_for_another_vendor_is_refused(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    order = theirs.order()
    browser = staff_browser(app, mine)
    request = BareDevice(theirs.slug).request("activate", order["ticket_code"])
    answer = _upload(browser, "request", "request_file", request)
    assert answer.status_code == 401 and "SIGNATURE_INVALID" in answer.text
    ticket = theirs.ok("GET", f"/tickets/{order['ticket_id']}")
    assert theirs.ok("GET", f"/licenses/{ticket['license_ids'][0]}")["state"] == "available"


def test_a_read_only_member_gets_no_forms_and_is_refused(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    order = vendor.order()
    browser = staff_browser(app, vendor, "read-only")
    page = browser.get(PAGE)
    assert page.status_code == 200 and post_forms(page.text) == []
    request = BareDevice(vendor.slug).request("activate", order["ticket_code"])
    assert _upload(browser, "request", "request_file", request).status_code == 403
    assert vendor.ok("GET", "/devices")["items"] == []
