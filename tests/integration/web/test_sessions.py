"""Logging in to the web fronts: sessions, fixation, logout, throttling, scoping."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from licentia.server.db.engine import Database
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.pages import (
    Browser,
    customer_with_admin,
    log_in_customer,
    log_in_staff,
    staff_user,
)


def test_staff_log_in_with_their_user_and_land_on_the_dashboard(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = Browser(app)
    answer = log_in_staff(browser, vendor, staff_user(vendor))
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http in development
    assert browser.get("/console/").status_code == 200


def test_the_console_sends_a_visitor_without_a_session_to_the_login(app: FastAPI):
    answer = Browser(app).get("/console/")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"


def test_a_wrong_password_is_said_next_to_the_form_with_its_code(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = Browser(app)
    answer = browser.submit(
        "/console/login",
        "/console/login",
        {"vendor": vendor.slug, "email": staff_user(vendor), "password": "not it at all"},
    )
    assert answer.status_code == 401
    assert "UNAUTHENTICATED" in answer.text
    assert "Wrong vendor, e-mail or password." in answer.text
    assert browser.session_cookie is None


def test_a_session_token_planted_before_login_is_not_the_session_after_it(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    victim = Browser(app)
    planted = "lis_planted-by-an-attacker-000000000000000000"
    victim.plant_session(planted)
    log_in_staff(victim, vendor, staff_user(vendor))
    assert victim.session_cookie not in (None, planted)
    attacker = Browser(app)
    attacker.plant_session(planted)
    assert attacker.get("/console/").status_code == 303  # still nobody


def test_logging_in_again_ends_the_previous_session(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    email = staff_user(vendor)
    browser = Browser(app)
    log_in_staff(browser, vendor, email)
    first = browser.session_cookie
    log_in_staff(browser, vendor, email)
    assert browser.session_cookie != first
    old = Browser(app)
    old.plant_session(first or "")
    assert old.get("/console/").status_code == 303


def test_logout_ends_the_session_on_the_server_too(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor))
    token = browser.session_cookie
    assert browser.submit("/console/", "/console/logout", {}).status_code == 303
    assert browser.session_cookie is None
    api = vendor.client.get("/api/v1/products", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401  # the same token no longer opens the API either


def test_the_staff_session_is_the_api_session_with_the_same_role(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor, "read-only"))
    headers = {"Authorization": f"Bearer {browser.session_cookie}"}
    assert vendor.client.get("/api/v1/products", headers=headers).status_code == 200
    assert browser.get("/console/branding").status_code == 200  # vendor:read
    answer = browser.submit(
        "/console/branding",
        "/console/branding",
        {"display_name": "X", "primary_colour": "#000000", "accent_colour": "#000000"},
    )
    assert answer.status_code == 403 and "FORBIDDEN" in answer.text


def test_a_customer_admin_logs_in_to_their_vendors_portal(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    _, email = customer_with_admin(database, vendor)
    browser = Browser(app)
    answer = log_in_customer(browser, vendor, email)
    assert answer.status_code == 303
    assert email in browser.get(f"/portal/{vendor.slug}/").text


def test_a_customer_session_counts_for_nothing_at_another_vendors_portal(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    mine, other = vendors.create(), vendors.create()
    _, email = customer_with_admin(database, mine)
    browser = Browser(app)
    log_in_customer(browser, mine, email)
    page = browser.get(f"/portal/{other.slug}/").text
    assert email not in page and f"/portal/{other.slug}/login" in page


def test_a_customer_cannot_log_in_at_another_vendors_portal(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    mine, other = vendors.create(), vendors.create()
    _, email = customer_with_admin(database, mine)
    assert log_in_customer(Browser(app), other, email).status_code == 401


def test_a_staff_token_does_not_log_in_to_the_console_of_another_vendor_by_url(
    app: FastAPI, vendors: VendorFactory
):
    mine = vendors.create()
    browser = Browser(app)
    log_in_staff(browser, mine, staff_user(mine))
    page = browser.get("/console/").text
    assert mine.slug in page  # the console shows only the staff's own vendor


# --- throttling ------------------------------------------------------------------------


def test_an_account_is_locked_after_five_failures_with_a_clear_message(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    email = staff_user(vendor)
    wrong = {"vendor": vendor.slug, "email": email, "password": "wrong password!"}
    for _ in range(5):
        # a new address each time: only the account's count can stop the sixth
        assert Browser(app).submit("/console/login", "/console/login", wrong).status_code == 401
    right = {**wrong, "password": PASSWORD}
    answer = Browser(app).submit("/console/login", "/console/login", right)
    # The right password too: a guesser must not learn it was right.
    assert answer.status_code == 429
    assert "LOGIN_LOCKED" in answer.text and "even for the right password" in answer.text
    api = vendor.client.post(
        "/api/v1/sessions", json={"vendor": vendor.slug, "email": email, "password": PASSWORD}
    )
    assert api.status_code == 429 and api.json()["code"] == "LOGIN_LOCKED"
    assert 0 < int(api.headers["Retry-After"]) <= 61
    assert datetime.fromisoformat(api.json()["locked_until"]) > datetime.now(UTC)


def test_an_address_is_throttled_after_thirty_failures_on_any_accounts(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = Browser(app)
    for n in range(30):
        data = {"vendor": vendor.slug, "email": f"nobody{n}@x.test", "password": "wrong password!"}
        assert browser.submit("/console/login", "/console/login", data).status_code == 401
    data = {"vendor": vendor.slug, "email": staff_user(vendor), "password": PASSWORD}
    assert browser.submit("/console/login", "/console/login", data).status_code == 429
    assert log_in_staff(Browser(app), vendor, data["email"]).status_code == 303  # elsewhere: fine


def test_a_success_clears_the_accounts_count(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    email = staff_user(vendor)
    wrong = {"vendor": vendor.slug, "email": email, "password": "wrong password!"}
    for _ in range(4):
        Browser(app).submit("/console/login", "/console/login", wrong)
    assert log_in_staff(Browser(app), vendor, email).status_code == 303
    for _ in range(4):
        Browser(app).submit("/console/login", "/console/login", wrong)
    assert log_in_staff(Browser(app), vendor, email).status_code == 303


def test_customer_logins_are_throttled_the_same_way(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    _, email = customer_with_admin(database, vendor)
    login = f"/portal/{vendor.slug}/login"
    for _ in range(5):
        Browser(app).submit(login, login, {"email": email, "password": "wrong password!"})
    answer = log_in_customer(Browser(app), vendor, email)
    assert answer.status_code == 429 and "LOGIN_LOCKED" in answer.text
