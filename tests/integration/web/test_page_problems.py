"""How pages word an error: the stable code and one sentence in the visitor's
language (never the service's English message in brackets after it), the rule a
field broke said in that language, and error pages that stay inside the front they
happened on, in the vendor's brand."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from licentia.server.web.errors import DETAILS
from tests.factories import VendorFactory
from tests.integration.web.devices import offline_computer
from tests.integration.web.pages import Browser, customer_with_admin
from tests.integration.web.staff import console, field_problem
from tests.integration.web.test_console_catalog import template_form


def test_a_wrong_password_is_one_sentence_in_german_without_the_english_message(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    _, email = customer_with_admin(vendor.database, vendor)
    login = f"/portal/{vendor.slug}/login"
    browser = Browser(app, language="de")
    answer = browser.submit(login, login, {"email": email, "password": "not it"})
    assert answer.status_code == 401
    assert "UNAUTHENTICATED" in answer.text
    assert "Falsche E-Mail-Adresse oder falsches Passwort." in answer.text
    assert "wrong e-mail" not in answer.text and "(" not in _alert(answer.text)


def test_an_english_sentence_is_not_repeated_in_brackets(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    page = f"/portal/{vendor.slug}/offline"
    answer = Browser(app).submit(page, f"{page}/request", {})
    problem = field_problem(answer.text, "request_file")
    assert "FILE_MISSING" in problem and "Choose the file to upload." in problem
    assert "(" not in problem


def test_a_console_login_names_the_vendor_among_what_may_be_wrong_in_german(
    app: FastAPI, vendors: VendorFactory
):
    browser = Browser(app, language="de")
    answer = browser.submit(
        "/console/login",
        "/console/login",
        {"vendor": "no-such-vendor", "email": "a@example.test", "password": "x"},
    )
    assert answer.status_code == 401
    assert "Falscher Anbieter, falsche E-Mail-Adresse oder falsches Passwort." in answer.text


def test_a_broken_template_rule_is_said_at_its_field_in_german(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    product = vendor.product()
    browser = console(app, vendor, language="de")
    cases = {
        "options.seats": ({"delivery": "seat_pool"}, "Ein Platz-Pool braucht eine Zahl"),
        "options.lease_days": ({"lease_days": "thirty"}, "Geben Sie eine ganze Zahl an."),
        "options.refresh_days": ({"refresh_days": "40"}, "Auffrischungsintervall"),
    }
    for field, (options, german) in cases.items():
        form = template_form(product["id"], vendor.unique("SKU"), **options)
        answer = browser.submit("/console/templates/new", "/console/templates/new", form)
        problem = field_problem(answer.text, field)
        assert answer.status_code == 422 and "VALIDATION_FAILED" in problem, field
        assert german in problem and "(" not in problem, (field, problem)


def test_every_detail_sentence_has_a_german_translation(app: FastAPI):
    german = app.state.pages.catalogues["de"]
    for _, sentence in DETAILS:
        assert german.gettext(sentence) != sentence, sentence


def test_a_request_without_a_ticket_from_a_new_computer_says_to_add_the_ticket(
    app: FastAPI, vendors: VendorFactory, tmp_path: Path
):
    vendor = vendors.create()
    jwks = vendor.client.get(f"/api/v1/vendors/{vendor.slug}/jwks.json").json()
    computer = offline_computer(vendor.slug, jwks, tmp_path / "store")
    try:
        request = computer.create_offline_request(tmp_path / "licentia-request.jws")
    finally:
        computer.close()
    page = f"/portal/{vendor.slug}/offline"
    answer = Browser(app).submit(
        page,
        f"{page}/request",
        {},
        files={"request_file": (request.name, request.read_bytes(), "text/plain")},
    )
    problem = field_problem(answer.text, "request_file")
    assert "DEVICE_UNKNOWN" in problem and "--ticket CODE" in problem
    assert "upload its request file first" not in problem


def test_a_portal_error_page_keeps_the_vendors_brand_and_navigation(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    _brand(console(app, vendor), "Acme Photo")
    for path in (f"/portal/{vendor.slug}/nope", f"/portal/{vendor.slug}/tickets/not-a-ticket"):
        answer = Browser(app).get(path)
        assert answer.status_code in (404, 303), path
        if answer.status_code == 303:
            continue  # the ticket page asks a visitor to log in first
        assert "<title>NOT_FOUND \u2013 Acme Photo</title>" in answer.text
        assert f'href="/portal/{vendor.slug}/login"' in answer.text  # the portal's menu
        assert f'<a href="/portal/{vendor.slug}/">' in answer.text  # its start page


def test_a_console_error_page_keeps_the_console_and_links_to_its_start(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = console(app, vendor)
    _brand(browser, "Acme Photo")
    answer = browser.get("/console/licenses/notauuid")
    assert answer.status_code == 404
    assert "<title>NOT_FOUND \u2013 Acme Photo</title>" in answer.text
    assert 'href="/console/licenses"' in answer.text and "Log out" in answer.text
    assert '<a href="/console/">' in answer.text


def test_an_unknown_vendors_error_page_leads_to_the_site_start(app: FastAPI):
    answer = Browser(app).get("/portal/no-such-vendor/")
    assert answer.status_code == 404 and '<a href="/">' in answer.text


def _alert(html: str) -> str:
    start = html.index('role="alert"')
    return html[start : html.index("</div>", start)]


def _brand(browser: Browser, name: str) -> None:
    form = {"display_name": name, "primary_colour": "#123456", "accent_colour": "#7a1f1f"}
    saved = browser.submit("/console/branding", "/console/branding", form)
    assert saved.status_code == 303, saved.text
