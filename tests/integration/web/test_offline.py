"""Activation by file through the portal: request → update → receipt, and a return,
with files made and read by the real client SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from licentia.client import LicenseClient
from tests.factories import VendorFactory, VendorHandle
from tests.integration.web.devices import offline_computer
from tests.integration.web.pages import Browser


@pytest.fixture
def shop(vendors: VendorFactory) -> VendorHandle:
    return vendors.create()


@pytest.fixture
def computer(shop: VendorHandle, tmp_path: Path) -> Iterator[LicenseClient]:
    jwks = shop.client.get(f"/api/v1/vendors/{shop.slug}/jwks.json").json()
    device = offline_computer(shop.slug, jwks, tmp_path / "store")
    yield device
    device.close()


def upload(browser: Browser, slug: str, step: str, field: str, path: Path):
    page = f"/portal/{slug}/offline"
    return browser.submit(
        page, f"{page}/{step}", {}, files={field: (path.name, path.read_bytes(), "text/plain")}
    )


def test_the_three_file_round_trip_activates_an_offline_computer(
    app: FastAPI, shop: VendorHandle, computer: LicenseClient, tmp_path: Path
):
    code = shop.order()["ticket_code"]
    request = computer.create_offline_request(tmp_path / "licentia-request.jws", ticket=code)
    browser = Browser(app)

    answer = upload(browser, shop.slug, "request", "request_file", request)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"] == 'attachment; filename="licentia-update.jws"'
    update = tmp_path / "licentia-update.jws"
    update.write_bytes(answer.content)
    receipt = computer.import_update(update)
    (entitlement,) = computer.licenses()

    confirmed = upload(browser, shop.slug, "receipt", "receipt_file", receipt)
    assert confirmed.status_code == 200 and "confirmed update 1" in confirmed.text
    device = shop.ok("GET", f"/licenses/{entitlement.license_id}")
    assert device["state"] == "activated"

    proof = computer.create_return_file(entitlement.license_id, tmp_path / "licentia-return.jws")
    preview = upload(browser, shop.slug, "return", "return_file", proof)
    assert preview.status_code == 200 and "Return the license" in preview.text
    returned = browser.submit(
        f"/portal/{shop.slug}/offline",
        f"/portal/{shop.slug}/offline/return/confirm",
        {"return_token": proof.read_text().strip()},
    )
    assert returned.status_code == 200 and entitlement.license_id in returned.text
    assert shop.ok("GET", f"/licenses/{entitlement.license_id}")["state"] == "returned"


def test_a_file_that_is_no_licentia_file_is_refused_next_to_its_field(
    app: FastAPI, shop: VendorHandle, tmp_path: Path
):
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"not a signed message at all")
    answer = upload(Browser(app), shop.slug, "request", "request_file", junk)
    assert answer.status_code == 401  # as the API answers an unsigned device message
    assert 'id="f-request_file-problem"' in answer.text and "SIGNATURE_INVALID" in answer.text


def test_no_file_at_all_asks_for_one(app: FastAPI, shop: VendorHandle):
    page = f"/portal/{shop.slug}/offline"
    answer = Browser(app).submit(page, f"{page}/receipt", {})
    assert answer.status_code == 422 and "FILE_MISSING" in answer.text


def test_a_request_made_for_one_vendor_is_refused_at_another_vendors_portal(
    app: FastAPI,
    shop: VendorHandle,
    computer: LicenseClient,
    vendors: VendorFactory,
    tmp_path: Path,
):
    order = shop.order()
    request = computer.create_offline_request(tmp_path / "r.jws", ticket=order["ticket_code"])
    answer = upload(Browser(app), vendors.create().slug, "request", "request_file", request)
    assert answer.status_code == 401 and 'id="f-request_file-problem"' in answer.text
    ticket = shop.ok("GET", f"/tickets/{order['ticket_id']}")
    assert shop.ok("GET", f"/licenses/{ticket['license_ids'][0]}")["state"] == "available"
