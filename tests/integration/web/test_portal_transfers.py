"""Moving a device license to another computer through the portal: the template's
transfer limit and the moves left are shown before the customer acts, on the ticket
and when a return file is uploaded, and the return is only done once confirmed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from licentia.client import LicenseClient
from tests.factories import VendorFactory, VendorHandle
from tests.integration.web.devices import offline_computer
from tests.integration.web.pages import Browser, customer_with_admin, log_in_customer
from tests.integration.web.test_offline import upload


@pytest.fixture
def shop(vendors: VendorFactory) -> VendorHandle:
    return vendors.create()


@pytest.fixture
def computer(shop: VendorHandle, tmp_path: Path) -> Iterator[LicenseClient]:
    jwks = shop.client.get(f"/api/v1/vendors/{shop.slug}/jwks.json").json()
    device = offline_computer(shop.slug, jwks, tmp_path / "store")
    yield device
    device.close()


def _activate(
    browser: Browser, shop: VendorHandle, computer: LicenseClient, code: str, at: Path
) -> str:
    """The offline round trip; the license id now on the computer."""
    request = computer.create_offline_request(at / "licentia-request.jws", ticket=code)
    answer = upload(browser, shop.slug, "request", "request_file", request)
    assert answer.status_code == 200, answer.text
    update = at / "licentia-update.jws"
    update.write_bytes(answer.content)
    upload(browser, shop.slug, "receipt", "receipt_file", computer.import_update(update))
    (entitlement,) = computer.licenses()
    return entitlement.license_id


def _ticket(shop: VendorHandle, returns: int, customer_id: str | None = None) -> dict[str, str]:
    template = shop.template({"transfer_limit": {"returns": returns, "period_days": 30}})
    return shop.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer_id)


def _moves(page: str) -> str:
    found = re.search(r"<td[^>]*>\s*((?:\d+ of \d+ left|none left|no limit)[^<]*)</td>", page)
    assert found, page
    return " ".join(found.group(1).split())


def test_the_moves_left_are_shown_before_the_return_and_counted_after_it(
    app: FastAPI, shop: VendorHandle, computer: LicenseClient, tmp_path: Path
):
    code = _ticket(shop, returns=2)["ticket_code"]
    browser = Browser(app)
    license_id = _activate(browser, shop, computer, code, tmp_path)
    lookup = browser.submit(
        f"/portal/{shop.slug}/", f"/portal/{shop.slug}/tickets", {"codes": code}
    )
    assert _moves(lookup.text) == "2 of 2 left (in any 30 days)"
    # the license's id, which the return command asks for, filled in
    assert f"licentia device return {license_id} --server" in lookup.text

    proof = computer.create_return_file(license_id, tmp_path / "licentia-return.jws")
    preview = upload(browser, shop.slug, "return", "return_file", proof)
    assert preview.status_code == 200
    assert "allow 2 moves in any 30 days; 0 of them are used" in preview.text
    assert "After this return, 1 move is left." in preview.text
    assert shop.ok("GET", f"/licenses/{license_id}")["state"] == "activated"  # not yet

    done = browser.submit(
        f"/portal/{shop.slug}/offline",
        f"/portal/{shop.slug}/offline/return/confirm",
        {"return_token": proof.read_text().strip()},
    )
    assert done.status_code == 200 and f"License {license_id} was returned" in done.text
    assert shop.ok("GET", f"/licenses/{license_id}")["state"] == "returned"
    lookup = browser.submit(
        f"/portal/{shop.slug}/", f"/portal/{shop.slug}/tickets", {"codes": code}
    )
    assert _moves(lookup.text) == "1 of 2 left (in any 30 days)"
    again = upload(browser, shop.slug, "return", "return_file", proof)
    assert "was returned with this file already" in again.text  # one proof, one move


def test_a_used_up_limit_is_refused_at_the_upload_and_says_when_the_next_move_comes(
    app: FastAPI,
    shop: VendorHandle,
    computer: LicenseClient,
    tmp_path: Path,
    vendors: VendorFactory,
):
    customer_id, email = customer_with_admin(shop.database, shop)
    order = _ticket(shop, returns=1, customer_id=customer_id)
    browser = Browser(app)
    license_id = _activate(browser, shop, computer, order["ticket_code"], tmp_path)
    first = computer.create_return_file(license_id, tmp_path / "first.jws")
    upload(browser, shop.slug, "return", "return_file", first)
    browser.submit(
        f"/portal/{shop.slug}/offline",
        f"/portal/{shop.slug}/offline/return/confirm",
        {"return_token": first.read_text().strip()},
    )
    (tmp_path / "again").mkdir()
    _activate(browser, shop, computer, order["ticket_code"], tmp_path / "again")

    log_in_customer(browser, shop, email)
    ticket = browser.get(f"/portal/{shop.slug}/tickets/{order['ticket_id']}")
    assert _moves(ticket.text).startswith("none left: all 1 moves of the last 30 days are used")

    second = computer.create_return_file(license_id, tmp_path / "second.jws")
    refused = upload(browser, shop.slug, "return", "return_file", second)
    assert refused.status_code == 409
    assert 'id="f-return_file-problem"' in refused.text and "TRANSFER_LIMIT_REACHED" in refused.text
    assert "Return the license" not in refused.text
    forced = browser.submit(
        f"/portal/{shop.slug}/offline",
        f"/portal/{shop.slug}/offline/return/confirm",
        {"return_token": second.read_text().strip()},
    )
    assert forced.status_code == 409 and "TRANSFER_LIMIT_REACHED" in forced.text
    assert shop.ok("GET", f"/licenses/{license_id}")["state"] == "activated"


def test_a_confirmation_without_the_forms_token_or_at_another_vendors_portal_returns_nothing(
    app: FastAPI,
    shop: VendorHandle,
    computer: LicenseClient,
    tmp_path: Path,
    vendors: VendorFactory,
):
    code = _ticket(shop, returns=3)["ticket_code"]
    browser = Browser(app)
    license_id = _activate(browser, shop, computer, code, tmp_path)
    proof = computer.create_return_file(license_id, tmp_path / "licentia-return.jws")
    token = proof.read_text().strip()
    forged = browser.client.post(
        f"/portal/{shop.slug}/offline/return/confirm", data={"return_token": token}
    )
    assert forged.status_code == 403 and "CSRF_FAILED" in forged.text
    elsewhere = vendors.create().slug
    foreign = browser.submit(
        f"/portal/{elsewhere}/offline",
        f"/portal/{elsewhere}/offline/return/confirm",
        {"return_token": token},
    )
    assert foreign.status_code in (401, 404) and 'id="f-return_file-problem"' in foreign.text
    assert upload(browser, elsewhere, "return", "return_file", proof).status_code in (401, 404)
    assert shop.ok("GET", f"/licenses/{license_id}")["state"] == "activated"


def test_the_preview_speaks_german(
    app: FastAPI, shop: VendorHandle, computer: LicenseClient, tmp_path: Path
):
    code = _ticket(shop, returns=2)["ticket_code"]
    browser = Browser(app, language="de")
    license_id = _activate(browser, shop, computer, code, tmp_path)
    proof = computer.create_return_file(license_id, tmp_path / "licentia-return.jws")
    preview = upload(browser, shop.slug, "return", "return_file", proof)
    assert "Lizenz zurückgeben" in preview.text
