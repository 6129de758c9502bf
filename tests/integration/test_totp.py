"""TOTP for vendor staff through the API: ``POST /sessions`` asks a user with TOTP on
for the code (a field), refuses a wrong, replayed or missing one with problem+json,
accepts each recovery code once, counts wrong codes as failed logins, and refuses an
admin without TOTP when the operator requires it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import CodeInvalidError, ConflictError
from licentia.server.api import create_app
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.password_resets.services import Realm, request_reset, reset_password
from licentia.server.settings import Settings
from licentia.server.tenancy.passwords import hash_password
from licentia.server.tenancy.services import list_users
from licentia.server.totp import services as totp
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.web.pages import staff_user


def user_id_of(vendor: VendorHandle, email: str) -> str:
    with vendor.database.read() as session:
        return next(u.id for u in list_users(session, vendor.id) if u.email == email)


def turn_on_totp(
    vendor: VendorHandle, master: MasterKey, email: str
) -> tuple[pyotp.TOTP, list[str]]:
    """TOTP on for the member (enrolled and confirmed with the current code); their
    authenticator and recovery codes."""
    actor = Actor(ActorKind.USER, user_id_of(vendor, email), vendor.id)
    with vendor.database.transaction() as session:
        enrolment = totp.start_enrolment(session, master, actor)
    authenticator = pyotp.TOTP(enrolment.secret)
    now = datetime.now(UTC)
    with vendor.database.transaction() as session:
        codes = totp.confirm_enrolment(session, master, actor, authenticator.at(now), now)
    return authenticator, codes


def next_code(authenticator: pyotp.TOTP) -> str:
    """The code of the next time step: accepted now (a step either side is), and
    never the one just used to confirm."""
    return authenticator.at(time.time() + totp.STEP_SECONDS)


def log_in(vendor: VendorHandle, email: str, password: str = PASSWORD, **more: str):
    body = {"vendor": vendor.slug, "email": email, "password": password, **more}
    return vendor.client.post("/api/v1/sessions", json=body)


def test_a_member_with_totp_on_logs_in_with_password_and_code(
    vendors: VendorFactory, master: MasterKey
):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    authenticator, _codes = turn_on_totp(vendor, master, email)

    missing = log_in(vendor, email)
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert missing.json()["code"] == "TOTP_REQUIRED"
    assert log_in(vendor, email, totp_code="000000").json()["code"] == "TOTP_INVALID"
    wrong_password = log_in(vendor, email, "not-the-password", totp_code=next_code(authenticator))
    assert wrong_password.json()["code"] == "UNAUTHENTICATED"

    code = next_code(authenticator)
    done = log_in(vendor, email, totp_code=code)
    assert done.status_code == 201, done.text
    token = done.json()["token"]
    assert (
        vendor.client.get(
            "/api/v1/licenses", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    replayed = log_in(vendor, email, totp_code=code)
    assert replayed.status_code == 401 and replayed.json()["code"] == "TOTP_INVALID"


def test_each_recovery_code_works_once_and_is_audited(vendors: VendorFactory, master: MasterKey):
    vendor = vendors.create()
    email = staff_user(vendor, "sales")
    _authenticator, codes = turn_on_totp(vendor, master, email)
    assert len(codes) == len(set(codes)) == totp.RECOVERY_CODES
    assert log_in(vendor, email, totp_code=codes[0].upper()).status_code == 201
    again = log_in(vendor, email, totp_code=codes[0])
    assert again.status_code == 401 and again.json()["code"] == "TOTP_INVALID"
    assert log_in(vendor, email, totp_code=codes[1]).status_code == 201
    events = vendor.ok("GET", "/audit-events", params={"limit": 200})["items"]
    actions = [e["action"] for e in events]
    assert "user.totp_enabled" in actions and actions.count("user.recovery_code_used") == 2
    assert all(code not in str(events) for code in codes)


def test_wrong_codes_count_as_failed_logins(vendors: VendorFactory, master: MasterKey):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    authenticator, _codes = turn_on_totp(vendor, master, email)
    for _ in range(5):
        assert log_in(vendor, email, totp_code="123456").status_code == 401
    refused = log_in(vendor, email, totp_code=next_code(authenticator))
    assert refused.status_code == 429


def test_a_member_without_totp_logs_in_with_the_password_alone(vendors: VendorFactory):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    assert log_in(vendor, email).status_code == 201
    assert log_in(vendor, email, totp_code="").status_code == 201


@pytest.fixture
def strict_client(
    settings: Settings, database: Database, master: MasterKey
) -> Iterator[TestClient]:
    """A server whose operator requires TOTP of vendor admins."""
    strict = settings.model_copy(update={"totp_required_for_admins": True})
    app: FastAPI = create_app(strict, database=database, master=master)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_admin_without_totp_gets_no_session_when_the_operator_requires_it(
    vendors: VendorFactory, master: MasterKey, strict_client: TestClient
):
    vendor = vendors.create()
    admin, support = staff_user(vendor, "admin"), staff_user(vendor, "support")
    body = {"vendor": vendor.slug, "password": PASSWORD}
    refused = strict_client.post("/api/v1/sessions", json={**body, "email": admin})
    assert refused.status_code == 403 and refused.json()["code"] == "TOTP_ENROLMENT_REQUIRED"
    assert (
        strict_client.post("/api/v1/sessions", json={**body, "email": support}).status_code == 201
    )
    authenticator, _codes = turn_on_totp(vendor, master, admin)
    code = next_code(authenticator)
    done = strict_client.post("/api/v1/sessions", json={**body, "email": admin, "totp_code": code})
    assert done.status_code == 201


def test_turning_off_needs_a_right_code_and_is_refused_to_a_required_admin(
    vendors: VendorFactory, master: MasterKey
):
    vendor = vendors.create()
    email = staff_user(vendor, "admin")
    authenticator, _codes = turn_on_totp(vendor, master, email)
    actor = Actor(ActorKind.USER, user_id_of(vendor, email), vendor.id)
    now = datetime.now(UTC)
    with pytest.raises(ConflictError) as required, vendor.database.transaction() as session:
        totp.disable_totp(
            session, master, actor, next_code(authenticator), now, required_for_admins=True
        )
    assert required.value.code == "TOTP_REQUIRED_BY_OPERATOR"
    with pytest.raises(CodeInvalidError), vendor.database.transaction() as session:
        totp.disable_totp(session, master, actor, "999999", now, required_for_admins=False)
    with vendor.database.transaction() as session:
        totp.disable_totp(
            session, master, actor, next_code(authenticator), now, required_for_admins=False
        )
    assert log_in(vendor, email).status_code == 201
    actions = [e["action"] for e in vendor.ok("GET", "/audit-events")["items"]]
    assert "user.totp_disabled" in actions


def test_a_password_reset_leaves_totp_on(vendors: VendorFactory, master: MasterKey):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    authenticator, _codes = turn_on_totp(vendor, master, email)
    now = datetime.now(UTC)
    with vendor.database.transaction() as session:
        link = request_reset(
            session,
            Realm.STAFF,
            vendor_slug=vendor.slug,
            email=email,
            ttl=timedelta(hours=1),
            now=now,
        )
    assert link is not None
    with vendor.database.transaction() as session:
        reset_password(
            session,
            Realm.STAFF,
            vendor_slug=vendor.slug,
            token=link.token,
            password_hash=hash_password("a-new-password-after-reset"),
            now=now,
        )
    asked = log_in(vendor, email, "a-new-password-after-reset")
    assert asked.status_code == 401 and asked.json()["code"] == "TOTP_REQUIRED"
    code = next_code(authenticator)
    assert log_in(vendor, email, "a-new-password-after-reset", totp_code=code).status_code == 201
