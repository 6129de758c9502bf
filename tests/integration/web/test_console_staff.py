"""The console's staff page: invite a colleague (the link arrives by real mail and sets
a password), change roles, disable and enable; the vendor keeps an admin."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import cast

import pytest
from fastapi import FastAPI

from licentia.server.mail import SmtpMailer
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.test_mail import Inbox, smtp  # noqa: F401 - the in-process SMTP server
from tests.integration.web.console import post_forms, staff_browser
from tests.integration.web.pages import Browser, log_in_staff

LINK = re.compile(r"(/console/password/[A-Za-z0-9_-]+)")


@pytest.fixture
def inbox(app: FastAPI, smtp: tuple[int, Inbox]) -> Iterator[Inbox]:  # noqa: F811
    """Mail the app sends goes to the in-process SMTP server while the test runs."""
    port, received = smtp
    kept = app.state.mailer
    app.state.mailer = SmtpMailer("127.0.0.1", port, "console@licentia.test")
    yield received
    app.state.mailer = kept


def _staff(vendor: VendorHandle) -> dict[str, dict[str, str]]:
    from licentia.server.tenancy.services import list_users

    with vendor.database.read() as session:
        return {
            user.email: {"id": user.id, "role": user.role, "disabled": str(user.disabled_at)}
            for user in list_users(session, vendor.id)
        }


def _invite(browser: Browser, email: str, role: str = "support"):
    return browser.submit("/console/staff", "/console/staff", {"email": email, "role": role})


def test_an_invited_colleague_sets_a_password_from_the_mail_and_logs_in(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    admin = staff_browser(app, vendor)
    assert _invite(admin, "new@example.test").status_code == 303
    [message] = inbox.messages
    assert message["To"] == "new@example.test"
    text = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    link = LINK.search(cast(bytes, text.get_payload(decode=True)).decode())
    assert link
    colleague = Browser(app)
    assert log_in_staff(colleague, vendor, "new@example.test").status_code == 401  # not yet
    short = colleague.submit(
        link.group(1), link.group(1), {"password": "short", "password_again": "short"}
    )
    assert short.status_code == 422 and "VALIDATION_FAILED" in short.text
    done = colleague.submit(
        link.group(1), link.group(1), {"password": PASSWORD, "password_again": PASSWORD}
    )
    assert done.status_code == 303
    assert log_in_staff(colleague, vendor, "new@example.test").status_code == 303
    again = Browser(app).get(link.group(1))  # a link works once
    assert again.status_code == 401 and "LINK_INVALID" in again.text


def test_an_e_mail_taken_already_is_shown_next_to_the_field(
    app: FastAPI, vendors: VendorFactory, inbox: Inbox
):
    vendor = vendors.create()
    admin = staff_browser(app, vendor)
    _invite(admin, "twice@example.test")
    answer = _invite(admin, "twice@example.test")
    problem = answer.text.split('id="f-email-problem"')[1].split("</p>")[0]
    assert answer.status_code == 409 and "ALREADY_EXISTS" in problem
    assert len(inbox.messages) == 1


def test_change_a_role_and_disable_ends_the_sessions(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    admin = staff_browser(app, vendor)
    colleague = staff_browser(app, vendor, "support")
    email = next(email for email, user in _staff(vendor).items() if user["role"] == "support")
    user_id = _staff(vendor)[email]["id"]
    answer = admin.submit("/console/staff", f"/console/staff/{user_id}/role", {"role": "sales"})
    assert answer.status_code == 303 and _staff(vendor)[email]["role"] == "sales"
    assert colleague.get("/console/api-keys").status_code == 403  # sales hold no keys:read
    assert (
        admin.submit("/console/staff", f"/console/staff/{user_id}/disable", {}).status_code == 303
    )
    assert colleague.get("/console/licenses").status_code == 303  # logged out at once
    assert log_in_staff(Browser(app), vendor, email).status_code == 401
    assert admin.submit("/console/staff", f"/console/staff/{user_id}/enable", {}).status_code == 303
    assert log_in_staff(Browser(app), vendor, email).status_code == 303


def test_the_last_admin_can_be_neither_demoted_nor_disabled(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    admin = staff_browser(app, vendor)
    [(email, me)] = _staff(vendor).items()
    demote = admin.submit("/console/staff", f"/console/staff/{me['id']}/role", {"role": "sales"})
    assert demote.status_code == 409 and "LAST_ADMIN" in demote.text
    disable = admin.submit("/console/staff", f"/console/staff/{me['id']}/disable", {})
    assert disable.status_code == 409 and "LAST_ADMIN" in disable.text
    assert _staff(vendor)[email]["role"] == "admin"


def test_a_read_only_member_sees_the_staff_but_cannot_act(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    staff_browser(app, vendor)
    viewer = staff_browser(app, vendor, "read-only")
    page = viewer.get("/console/staff")
    assert page.status_code == 200 and post_forms(page.text) == []
    admin_id = next(u["id"] for u in _staff(vendor).values() if u["role"] == "admin")
    assert _invite(viewer, "x@example.test").status_code == 403
    for action in ("disable", "role", "invite-again"):
        url = f"/console/staff/{admin_id}/{action}"
        assert viewer.submit("/console/staff", url, {"role": "sales"}).status_code == 403
    assert "x@example.test" not in _staff(vendor)


def test_another_vendors_staff_are_not_found_and_not_changed(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    staff_browser(app, theirs)
    staff_browser(app, theirs)  # two admins: only the tenancy can refuse
    browser = staff_browser(app, mine)
    for email, user in _staff(theirs).items():
        assert email not in browser.get("/console/staff").text
        for action in ("disable", "role", "invite-again"):
            url = f"/console/staff/{user['id']}/{action}"
            answer = browser.submit("/console/staff", url, {"role": "read-only"})
            assert answer.status_code == 404, action
    assert {user["role"] for user in _staff(theirs).values()} == {"admin"}
    assert {user["disabled"] for user in _staff(theirs).values()} == {"None"}
