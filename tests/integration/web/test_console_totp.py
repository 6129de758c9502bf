"""The console's two-step login: a member turns TOTP on (confirmed with a code, the
recovery codes shown once), the login then asks for the code after the password and
opens no session before it, and turning it off needs the password and a code. When
the operator requires TOTP of vendor admins, an admin can do nothing but enrol."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pyotp
import pytest
from fastapi import FastAPI

from licentia.server.api import create_app
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from licentia.server.totp.services import RECOVERY_CODES, STEP_SECONDS
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.web.pages import Browser, log_in_staff, staff_user
from tests.integration.web.staff import field_problem

SECRET = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
RECOVERY = re.compile(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>")


def _enrol(browser: Browser) -> pyotp.TOTP:
    """Turn TOTP on through the pages; the member's authenticator."""
    started = browser.submit("/console/totp", "/console/totp/enrol", {})
    assert started.status_code == 303
    page = browser.get("/console/totp").text
    found = SECRET.search(page)
    assert found and 'src="data:image/svg+xml' in page and "otpauth://totp/" in page
    authenticator = pyotp.TOTP(found.group(1))
    wrong = browser.submit("/console/totp", "/console/totp/confirm", {"code": "000000"})
    assert wrong.status_code == 401 and "TOTP_INVALID" in field_problem(wrong.text, "code")
    done = browser.submit("/console/totp", "/console/totp/confirm", {"code": authenticator.now()})
    assert done.status_code == 200
    assert len(RECOVERY.findall(done.text)) == RECOVERY_CODES
    return authenticator


def _next(authenticator: pyotp.TOTP) -> str:
    return authenticator.at(time.time() + STEP_SECONDS)


def _password_step(app: FastAPI, vendor: VendorHandle, email: str) -> Browser:
    browser = Browser(app)
    answer = log_in_staff(browser, vendor, email)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login/code"
    return browser


def test_a_member_turns_totp_on_and_the_login_asks_for_the_code(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    member = Browser(app)
    log_in_staff(member, vendor, email)
    authenticator = _enrol(member)
    assert "Recovery codes left: 10" in member.get("/console/totp").text

    browser = _password_step(app, vendor, email)
    assert browser.session_cookie is None  # no session before the code
    assert browser.get("/console/licenses").status_code == 303
    wrong = browser.submit("/console/login/code", "/console/login/code", {"code": "123456"})
    assert wrong.status_code == 401 and "TOTP_INVALID" in field_problem(wrong.text, "code")
    done = browser.submit(
        "/console/login/code", "/console/login/code", {"code": _next(authenticator)}
    )
    assert done.status_code == 303 and done.headers["location"] == "/console/"
    assert browser.get("/console/licenses").status_code == 200


def test_a_challenge_cannot_be_made_up_or_carried_to_another_browser(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    member = Browser(app)
    log_in_staff(member, vendor, email)
    authenticator = _enrol(member)
    browser = _password_step(app, vendor, email)
    challenge = browser.client.cookies.get("licentia_login_step")
    assert challenge
    user_id, until, _signature = challenge.split(".")
    for forged in (f"{user_id}.{until}.{'0' * 64}", challenge):
        other = Browser(app)
        other.client.cookies.set("licentia_login_step", forged, domain="testserver.local", path="/")
        assert other.get("/console/login/code").status_code == 303  # back to the login
        token = other.token("/console/login")
        answer = other.client.post(
            "/console/login/code", data={"csrf_token": token, "code": _next(authenticator)}
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
        assert other.session_cookie is None


def test_a_recovery_code_logs_in_once_and_turning_off_needs_password_and_code(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    email = staff_user(vendor, "sales")
    member = Browser(app)
    log_in_staff(member, vendor, email)
    started = member.submit("/console/totp", "/console/totp/enrol", {})
    assert started.status_code == 303
    found = SECRET.search(member.get("/console/totp").text)
    assert found
    authenticator = pyotp.TOTP(found.group(1))
    shown = member.submit("/console/totp", "/console/totp/confirm", {"code": authenticator.now()})
    recovery = RECOVERY.findall(shown.text)[0]

    browser = _password_step(app, vendor, email)
    used = browser.submit("/console/login/code", "/console/login/code", {"code": recovery})
    assert used.status_code == 303
    again = _password_step(app, vendor, email)
    refused = again.submit("/console/login/code", "/console/login/code", {"code": recovery})
    assert refused.status_code == 401

    wrong = member.submit(
        "/console/totp",
        "/console/totp/disable",
        {"password": "not-my-password", "code": _next(authenticator)},
    )
    assert wrong.status_code == 422 and "PASSWORD_WRONG" in field_problem(wrong.text, "password")
    off = member.submit(
        "/console/totp",
        "/console/totp/disable",
        {"password": PASSWORD, "code": _next(authenticator)},
    )
    assert off.status_code == 303
    assert log_in_staff(Browser(app), vendor, email).headers["location"] == "/console/"


@pytest.fixture
def strict_app(settings: Settings, database: Database, master: MasterKey) -> Iterator[FastAPI]:
    """A server whose operator requires TOTP of vendor admins."""
    strict = settings.model_copy(update={"totp_required_for_admins": True})
    yield create_app(strict, database=database, master=master)


def test_a_required_admin_can_do_nothing_but_enrol_and_cannot_turn_it_off(
    strict_app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    admin_email, support_email = staff_user(vendor, "admin"), staff_user(vendor, "support")
    support = Browser(strict_app)
    log_in_staff(support, vendor, support_email)
    assert support.get("/console/licenses").status_code == 200  # not an admin: not required

    admin = Browser(strict_app)
    assert log_in_staff(admin, vendor, admin_email).status_code == 303
    for path in ("/console/", "/console/licenses", "/console/staff", "/console/api-keys"):
        answer = admin.get(path)
        assert answer.status_code == 303, path
        assert admin.get(answer.headers["location"]).headers.get("location") == "/console/totp"
    refused = admin.client.post(
        "/console/api-keys",
        data={"csrf_token": admin.token("/console/totp"), "name": "x", "scopes": "orders:read"},
    )
    assert refused.status_code == 303  # to the login, which sends them to enrol
    page = admin.get("/console/totp").text
    assert "requires two-step login" in page

    authenticator = _enrol(admin)
    assert admin.get("/console/licenses").status_code == 200
    kept = admin.submit(
        "/console/totp",
        "/console/totp/disable",
        {"password": PASSWORD, "code": _next(authenticator)},
    )
    assert kept.status_code == 409 and "TOTP_REQUIRED_BY_OPERATOR" in kept.text


def test_an_admin_turns_off_a_colleagues_lost_authenticator_at_their_vendor_only(
    app: FastAPI, vendors: VendorFactory
):
    vendor, other = vendors.create(), vendors.create()
    email = staff_user(vendor, "support")
    member = Browser(app)
    log_in_staff(member, vendor, email)
    _enrol(member)
    admin = Browser(app)
    log_in_staff(admin, vendor, staff_user(vendor, "admin"))
    listed = admin.get("/console/staff").text
    found = re.search(r'action="/console/staff/([0-9a-f-]+)/totp-reset"', listed)
    assert found and "two-step login" in listed
    reset = f"/console/staff/{found.group(1)}/totp-reset"

    stranger = Browser(app)
    log_in_staff(stranger, other, staff_user(other, "admin"))
    assert stranger.submit("/console/staff", reset, {}).status_code == 404
    reader = Browser(app)
    log_in_staff(reader, vendor, staff_user(vendor, "read-only"))
    assert reader.submit("/console/staff", reset, {}).status_code == 403
    _password_step(app, vendor, email)  # still asks for the code

    done = admin.submit("/console/staff", reset, {})
    assert done.status_code == 303 and "done=totp_reset" in done.headers["location"]
    assert log_in_staff(Browser(app), vendor, email).headers["location"] == "/console/"
    assert "user.totp_reset" in [e["action"] for e in vendor.ok("GET", "/audit-events")["items"]]
