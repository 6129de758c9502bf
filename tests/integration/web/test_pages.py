"""What every page promises: CSRF on every form, errors with their code and never a
stack trace, the visitor's language, the vendor's brand, tickets looked up safely."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from licentia.formats.tickets import ALPHABET
from tests.factories import VendorFactory
from tests.integration.web.pages import Browser, log_in_staff, staff_user

PAGE_PREFIXES = ("/portal", "/console", "/language")


def form_routes(app: FastAPI) -> list[str]:
    return sorted(
        route.path
        for route in iter_route_contexts(app.routes)
        if route.path
        and route.path.startswith(PAGE_PREFIXES)
        and set(route.methods or ()) & {"POST", "PUT", "PATCH", "DELETE"}
    )


def test_the_web_fronts_have_forms(app: FastAPI):
    assert "/console/login" in form_routes(app) and "/portal/{slug}/tickets" in form_routes(app)


@pytest.mark.parametrize("with_token", ["none", "wrong", "another visitor's"])
def test_every_form_refuses_a_post_without_the_visitors_csrf_token(
    app: FastAPI, vendors: VendorFactory, with_token: str
):
    vendor = vendors.create()
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor))  # a session, so only CSRF can refuse
    token = {
        "none": None,
        "wrong": "0" * 64,
        "another visitor's": Browser(app).token("/console/login"),
    }
    for path in form_routes(app):
        url = path.replace("{slug}", vendor.slug)
        data = {} if token[with_token] is None else {"csrf_token": token[with_token]}
        answer = browser.client.post(url, data=data)
        assert answer.status_code == 403, url
        assert "CSRF_FAILED" in answer.text, url
    assert browser.get("/console/").status_code == 200  # and the session is untouched


def test_a_form_with_the_token_in_the_htmx_header_is_accepted(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = Browser(app)
    token = browser.token(f"/portal/{vendor.slug}/")
    answer = browser.client.post(
        f"/portal/{vendor.slug}/tickets", data={"codes": "x"}, headers={"X-CSRF-Token": token}
    )
    assert answer.status_code == 422 and "TICKET_CODE_INVALID" in answer.text


def test_the_icon_a_browser_asks_for_is_there_and_pages_name_it(app: FastAPI):
    browser = Browser(app)
    icon = browser.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    named = browser.get("/static/web/favicon.svg")
    assert named.status_code == 200 and named.content == icon.content
    assert '<link rel="icon" href="/static/web/favicon.svg"' in browser.get("/").text


def test_the_root_is_a_page_that_leads_to_the_console(app: FastAPI):
    answer = Browser(app).get("/")
    assert answer.status_code == 200 and 'href="/console/login"' in answer.text


def test_an_unknown_vendor_portal_is_an_error_page_with_its_code(app: FastAPI):
    answer = Browser(app).get("/portal/no-such-vendor/")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "NOT_FOUND" in answer.text and "Traceback" not in answer.text


def test_the_api_keeps_its_problem_json(app: FastAPI):
    answer = Browser(app).get("/api/v1/products")
    assert answer.status_code == 401 and answer.json()["code"] == "UNAUTHENTICATED"


def test_pages_carry_a_content_security_policy_that_allows_only_this_site(app: FastAPI):
    headers = Browser(app).get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_the_language_follows_accept_language_and_the_switch(app: FastAPI):
    german = Browser(app, language="de-AT,de;q=0.9,en;q=0.5")
    page = german.get("/console/login")
    assert page.headers["content-language"] == "de" and "Anmelden" in page.text
    english = Browser(app, language="fr, en;q=0.8")
    assert english.get("/console/login").headers["content-language"] == "en"
    switch = english.get("/language/de?next=/console/login")
    assert switch.status_code == 303 and switch.headers["location"] == "/console/login"
    assert "Herstellerkonsole" in english.get("/console/login").text


def test_the_language_switch_goes_back_only_to_this_site(app: FastAPI):
    answer = Browser(app).get("/language/de?next=//evil.example/")
    assert answer.headers["location"] == "/"


# --- branding --------------------------------------------------------------------------


def test_the_portal_shows_the_vendors_brand_after_the_admin_sets_it(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor))
    saved = browser.submit(
        "/console/branding",
        "/console/branding",
        {
            "display_name": "Acme Tools",
            "primary_colour": "#123456",
            "accent_colour": "#7a1f1f",
            "support_email": "help@acme.test",
        },
        files={"logo": ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")},
    )
    assert saved.status_code == 303, saved.text
    portal = Browser(app).get(f"/portal/{vendor.slug}/").text
    assert "Acme Tools" in portal and "--brand: #123456" in portal and "help@acme.test" in portal
    logo = Browser(app).get(f"/portal/{vendor.slug}/logo")
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/svg+xml"


def test_an_unreadable_colour_is_refused_next_to_its_field(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor))
    answer = browser.submit(
        "/console/branding",
        "/console/branding",
        {"display_name": "X", "primary_colour": "#ffff00", "accent_colour": "#7a1f1f"},
    )
    assert answer.status_code == 422
    field = re.search(r'id="f-primary_colour-problem"[^>]*>(.*?)</p>', answer.text, re.S)
    assert field and "COLOUR_CONTRAST_TOO_LOW" in field.group(1)


# --- tickets ---------------------------------------------------------------------------


def lookup(app: FastAPI, slug: str, codes: str) -> tuple[int, str]:
    browser = Browser(app)
    portal = f"/portal/{slug}/"
    answer = browser.submit(portal, f"{portal}tickets", {"codes": codes})
    return answer.status_code, answer.text


def ticket_code(vendor) -> str:
    order = vendor.order()
    return str(vendor.ok("POST", f"/tickets/{order['ticket_id']}/code")["code"])


def test_a_ticket_shows_its_licenses(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    template = vendor.template({"maintenance_days": 30})
    order = vendor.order([{"sku": template["sku"], "quantity": 2}])
    code = vendor.ok("POST", f"/tickets/{order['ticket_id']}/code")["code"]
    status, page = lookup(app, vendor.slug, code.lower())
    assert status == 200
    assert page.count("state-available") == 2 and "edit, export" in page and code in page


def test_a_mistyped_symbol_is_named_by_its_position_before_any_lookup(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    code = ticket_code(vendor)
    status, page = lookup(app, vendor.slug, code[:6] + "U" + code[7:])
    assert status == 422 and "TICKET_CODE_INVALID" in page and "Symbol 6 (U)" in page


def test_a_swapped_pair_is_caught_by_the_check_symbol(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    code = ticket_code(vendor)
    a, b = code[0], next(c for c in ALPHABET if c != code[0])
    status, page = lookup(app, vendor.slug, b + code[1:] if a != b else code)
    assert status == 422 and "check symbol does not match" in page


def test_another_vendors_code_is_not_found_at_this_portal(app: FastAPI, vendors: VendorFactory):
    mine, other = vendors.create(), vendors.create()
    status, page = lookup(app, mine.slug, ticket_code(other))
    assert status == 422 and "TICKET_NOT_FOUND" in page


def test_several_codes_are_looked_up_each_with_its_own_answer(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    good = ticket_code(vendor)
    status, page = lookup(app, vendor.slug, f"{good}\nABCDE")
    assert status == 422
    assert "state-available" in page and "TICKET_CODE_INVALID" in page
