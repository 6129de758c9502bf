"""A page refuses text with a NUL character (U+0000) on every backend alike, as the API
does (tests/integration/test_nul_text.py): a form's field, the query and the path.
Before, the console kept a customer named with a NUL on SQLite and refused it on
PostgreSQL, and a search for one answered 200 on one and 422 on the other. A file of a
multipart form may hold any bytes: it is the text fields that are checked."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import Response

from tests.factories import VendorFactory, VendorHandle
from tests.integration.web.pages import Browser, log_in_staff, staff_user
from tests.integration.web.staff import console

SENTENCE = "A field holds the invisible NUL character, which no text may hold."


def refused(answer: Response) -> str:
    assert answer.status_code == 422, answer.text
    assert "VALIDATION_FAILED" in answer.text
    return answer.text


def customer_names(vendor: VendorHandle) -> list[str]:
    return [customer["name"] for customer in vendor.ok("GET", "/customers")["items"]]


def test_a_nul_in_a_form_field_is_refused_with_a_sentence_and_nothing_is_stored(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = console(app, vendor)
    answer = browser.submit("/console/customers", "/console/customers", {"name": "Nul\x00 AG"})
    assert SENTENCE in refused(answer)
    assert customer_names(vendor) == []
    stored = browser.submit("/console/customers", "/console/customers", {"name": "Nul AG"})
    assert stored.status_code == 303 and customer_names(vendor) == ["Nul AG"]


def test_the_sentence_is_in_the_visitors_language(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = console(app, vendor, language="de")
    answer = browser.submit("/console/customers", "/console/customers", {"name": "a\x00"})
    assert "Ein Feld enthält das unsichtbare NUL-Zeichen" in refused(answer)


def test_a_nul_in_a_field_of_a_multipart_form_is_refused_and_the_brand_is_unchanged(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor))
    form = {"display_name": "Acme\x00", "primary_colour": "#123456", "accent_colour": "#7a1f1f"}
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    answer = browser.submit(
        "/console/branding", "/console/branding", form, files={"logo": ("l.svg", svg)}
    )
    refused(answer)
    assert "#123456" not in Browser(app).get(f"/portal/{vendor.slug}/").text


def test_a_file_with_nul_bytes_is_the_files_own_problem_not_a_refused_field(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    page = f"/portal/{vendor.slug}/offline"
    answer = Browser(app).submit(
        page, f"{page}/request", {}, files={"request_file": ("r.jws", b"\x00\x01binary")}
    )
    assert "SIGNATURE_INVALID" in answer.text and "VALIDATION_FAILED" not in answer.text


def test_a_nul_in_the_query_or_the_path_of_a_page_is_refused(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = console(app, vendor)
    vendor.ok("POST", "/customers", json={"name": "Zeta"})
    assert SENTENCE in refused(browser.get("/console/customers", params={"q": "Ze\x00"}))
    assert "Zeta" in browser.get("/console/customers", params={"q": "Ze"}).text
    refused(browser.get("/console/customers/abc%00def"))
    refused(Browser(app).get(f"/portal/{vendor.slug}%00/login"))
