"""A forgotten password, at the console and at the portal: the link arrives by real
mail (aiosmtpd), sets a new password once, ends every session of the user, and works
at its own vendor only; asking never tells whether an account exists."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import select, update

from licentia.domain.actors import operator
from licentia.server.db.engine import Database
from licentia.server.jobs.models import JobRow
from licentia.server.notifications.mail_jobs import MAIL_JOB
from licentia.server.password_resets.models import PasswordReset
from licentia.server.tenancy.services import list_users
from licentia.server.tenancy.staff import disable_user
from licentia.server.web.link_logs import ACCESS_LOGGER
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.web.inbox import Inbox
from tests.integration.web.pages import (
    Browser,
    customer_with_admin,
    log_in_customer,
    log_in_staff,
    staff_user,
)

NEW_PASSWORD = "a-brand-new-password-42"
STAFF_LINK = re.compile(r"http://\S+(/console/reset/[a-z0-9-]+/[A-Za-z0-9_-]+)")
PORTAL_LINK = re.compile(r"http://\S+(/portal/[a-z0-9-]+/reset/[A-Za-z0-9_-]+)")


def _ask_staff(browser: Browser, vendor: str, email: str):
    return browser.submit("/console/forgot", "/console/forgot", {"vendor": vendor, "email": email})


def _ask_customer(browser: Browser, vendor: VendorHandle, email: str):
    forgot = f"/portal/{vendor.slug}/forgot"
    return browser.submit(forgot, forgot, {"email": email})


def _link(inbox: Inbox, pattern: re.Pattern[str], index: int = -1) -> str:
    found = pattern.search(inbox.text_of(inbox.messages[index]))
    assert found, inbox.text_of(inbox.messages[index])
    return found.group(1)


def _audit_actions(vendor: VendorHandle, object_id: str | None = None) -> list[str]:
    events = vendor.ok("GET", "/audit-events", params={"limit": 200})["items"]
    return [e["action"] for e in events if object_id is None or e["object_id"] == object_id]


def _expire(database: Database) -> None:
    with database.transaction() as session:
        session.execute(
            update(PasswordReset)
            .where(PasswordReset.used_at.is_(None))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_staff_set_a_new_password_from_the_mailed_link_and_every_session_ends(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    logged_in = Browser(app)
    log_in_staff(logged_in, vendor, email)
    api_token = vendor.client.post(
        "/api/v1/sessions", json={"vendor": vendor.slug, "email": email, "password": PASSWORD}
    ).json()["token"]

    asked = _ask_staff(Browser(app), vendor.slug, email.upper())
    assert asked.status_code == 303
    [mail] = inbox.messages
    assert mail["To"] == email and "vendor console" in mail["Subject"]
    link = _link(inbox, STAFF_LINK)
    html = next(p for p in mail.walk() if p.get_content_type() == "text/html")
    assert link in str(html.get_payload(decode=True))

    visitor = Browser(app)
    assert email in visitor.get(link).text
    typo = {"password": NEW_PASSWORD, "password_again": "another-password-1"}
    differ = visitor.submit(link, link, typo)
    assert differ.status_code == 422 and 'id="f-password_again-problem"' in differ.text
    assert "PASSWORDS_DIFFER" in differ.text
    short = visitor.submit(link, link, {"password": "short", "password_again": "short"})
    assert short.status_code == 422 and "VALIDATION_FAILED" in short.text
    done = visitor.submit(link, link, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert done.status_code == 303 and "password=reset" in done.headers["location"]

    assert logged_in.get("/console/licenses").status_code == 303  # logged out
    me = vendor.client.get("/api/v1/licenses", headers={"Authorization": f"Bearer {api_token}"})
    assert me.status_code == 401
    assert log_in_staff(Browser(app), vendor, email).status_code == 401  # the old password
    fresh = Browser(app)
    new_login = fresh.submit(
        "/console/login",
        "/console/login",
        {"vendor": vendor.slug, "email": email, "password": NEW_PASSWORD},
    )
    assert new_login.status_code == 303
    spent = Browser(app).get(link)
    assert spent.status_code == 401 and "LINK_INVALID" in spent.text
    actions = _audit_actions(vendor)
    assert "user.password_reset_requested" in actions and "user.password_reset" in actions
    assert all(link.rsplit("/", 1)[1] not in str(e) for e in vendor.ok("GET", "/audit-events"))


def test_asking_answers_the_same_for_an_unknown_address_and_sends_nothing(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    known = staff_user(vendor)
    answers = [
        _ask_staff(Browser(app), vendor.slug, "nobody@example.test"),
        _ask_staff(Browser(app), "no-such-vendor", known),
        _ask_staff(Browser(app), vendor.slug, known),
    ]
    assert {(a.status_code, a.headers["location"].split("&")[0]) for a in answers} == {
        (303, "/console/forgot?sent=1")
    }
    pages = {
        Browser(app).get(a.headers["location"]).text.count("we have sent it a link")
        for a in answers
    }
    assert pages == {1}
    assert [m["To"] for m in inbox.messages] == [known]


def test_a_customer_user_resets_at_the_portal_and_their_other_session_ends(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor = vendors.create()
    _, email = customer_with_admin(database, vendor)
    elsewhere = Browser(app)
    log_in_customer(elsewhere, vendor, email)
    assert elsewhere.get(f"/portal/{vendor.slug}/users").status_code == 200

    unknown = _ask_customer(Browser(app), vendor, "stranger@customer.test")
    asked = _ask_customer(Browser(app), vendor, email)
    assert unknown.status_code == asked.status_code == 303
    assert unknown.headers["location"] == asked.headers["location"]
    [mail] = inbox.messages
    assert mail["To"] == email and "License Portal" in mail["Subject"]
    link = _link(inbox, PORTAL_LINK)

    visitor = Browser(app)
    assert email in visitor.get(link).text
    done = visitor.submit(link, link, {"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
    assert done.status_code == 303
    assert elsewhere.get(f"/portal/{vendor.slug}/users").status_code == 303  # to the login
    login = f"/portal/{vendor.slug}/login"
    assert (
        visitor.submit(login, login, {"email": email, "password": NEW_PASSWORD}).status_code == 303
    )
    assert Browser(app).get(link).status_code == 401
    assert "customer_user.password_reset" in _audit_actions(vendor)


def test_an_expired_link_sets_nothing(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor = vendors.create()
    email = staff_user(vendor)
    _ask_staff(Browser(app), vendor.slug, email)
    link = _link(inbox, STAFF_LINK)
    _expire(database)
    visitor = Browser(app)
    assert visitor.get(link).status_code == 401
    token = visitor.token("/console/forgot")
    answer = visitor.client.post(link, data={"csrf_token": token, "password": NEW_PASSWORD})
    assert answer.status_code == 401 and "LINK_INVALID" in answer.text
    assert log_in_staff(Browser(app), vendor, email).status_code == 303  # the old one works


def test_a_forged_token_and_an_older_link_are_refused(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor = vendors.create()
    _, email = customer_with_admin(database, vendor)
    forged = f"/portal/{vendor.slug}/reset/{secrets.token_urlsafe(32)}"
    assert Browser(app).get(forged).status_code == 401
    _ask_customer(Browser(app), vendor, email)
    _ask_customer(Browser(app), vendor, email)
    older, newer = _link(inbox, PORTAL_LINK, 0), _link(inbox, PORTAL_LINK, 1)
    assert Browser(app).get(older).status_code == 401  # asking again spends the older link
    assert Browser(app).get(newer).status_code == 200


def test_a_link_works_only_at_its_own_vendor_and_front(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor, other = vendors.create(), vendors.create()
    _, customer_email = customer_with_admin(database, vendor)
    staff_email = staff_user(vendor)
    _ask_customer(Browser(app), vendor, customer_email)
    _ask_staff(Browser(app), vendor.slug, staff_email)
    customer_token = _link(inbox, PORTAL_LINK, 0).rsplit("/", 1)[1]
    staff_token = _link(inbox, STAFF_LINK, 1).rsplit("/", 1)[1]
    for path in (
        f"/portal/{other.slug}/reset/{customer_token}",
        f"/console/reset/{other.slug}/{staff_token}",
        f"/console/reset/{vendor.slug}/{customer_token}",
        f"/portal/{vendor.slug}/reset/{staff_token}",
    ):
        visitor = Browser(app)
        assert visitor.get(path).status_code == 401, path
        token = visitor.token(f"/portal/{other.slug}/forgot")
        answer = visitor.client.post(path, data={"csrf_token": token, "password": NEW_PASSWORD})
        assert answer.status_code == 401 and "LINK_INVALID" in answer.text, path
    assert log_in_customer(Browser(app), vendor, customer_email).status_code == 303
    assert log_in_staff(Browser(app), vendor, staff_email).status_code == 303


def test_a_disabled_user_gets_no_link_and_a_form_without_its_token_is_refused(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    with vendor.database.transaction() as session:
        user = next(u for u in list_users(session, vendor.id) if u.email == email)
        disable_user(session, operator(vendor.id), user.id)
    assert _ask_staff(Browser(app), vendor.slug, email).status_code == 303
    refused = Browser(app).client.post(
        "/console/forgot", data={"vendor": vendor.slug, "email": staff_user(vendor)}
    )
    assert refused.status_code == 403 and "CSRF_FAILED" in refused.text
    assert inbox.messages == []


def test_the_access_log_shows_mailed_links_without_their_token(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    email = staff_user(vendor)
    _ask_staff(Browser(app), vendor.slug, email)
    link = _link(inbox, STAFF_LINK)
    record = logging.LogRecord(
        ACCESS_LOGGER,
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", link, "1.1", 200),
        None,
    )
    logging.getLogger(ACCESS_LOGGER).handle(record)
    line = record.getMessage()
    assert link.rsplit("/", 1)[1] not in line and f"/console/reset/{vendor.slug}/" in line


def test_a_reset_mail_is_queued_as_the_vendors_job(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    """So that a reset mail failing on every attempt is on the vendor's Failed jobs
    page, with its Retry, as its other mails are."""
    vendor = vendors.create()
    email = staff_user(vendor, "support")
    assert _ask_staff(Browser(app), vendor.slug, email).status_code == 303
    assert len(inbox.messages) == 1
    with vendor.database.read() as session:
        kinds = session.scalars(select(JobRow.kind).where(JobRow.vendor_id == vendor.id)).all()
    assert kinds == [MAIL_JOB]
