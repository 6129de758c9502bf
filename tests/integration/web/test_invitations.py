"""A customer admin invites a colleague, who sets a password from the mailed link
(received by a real SMTP server) and logs in."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.server.db.engine import Database
from tests.factories import PASSWORD, VendorFactory
from tests.integration.web.inbox import Inbox
from tests.integration.web.pages import Browser, customer_with_admin, log_in_customer
from tests.integration.web.staff import field_problem

LINK = re.compile(r"http://\S+/welcome/(\S+)")


def test_a_customer_admin_invites_a_colleague_who_sets_a_password_and_logs_in(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor = vendors.create()
    _, admin = customer_with_admin(database, vendor)
    browser = Browser(app)
    log_in_customer(browser, vendor, admin)
    users = f"/portal/{vendor.slug}/users"
    answer = browser.submit(users, users, {"email": "colleague@customer.test"})
    assert answer.status_code == 303, answer.text
    [mail] = inbox.messages
    assert mail["To"] == "colleague@customer.test"
    found = LINK.search(inbox.text_of(mail))
    assert found, inbox.text_of(mail)
    # It promises what a colleague can do: no containers or users to manage.
    assert "manage" not in inbox.text_of(mail) and "see the company's tickets" in " ".join(
        inbox.text_of(mail).split()
    )
    welcome = f"/portal/{vendor.slug}/welcome/{found.group(1)}"

    colleague = Browser(app)
    assert "colleague@customer.test" in colleague.get(welcome).text
    typo = {"password": PASSWORD, "password_again": PASSWORD + "x"}
    differ = colleague.submit(welcome, welcome, typo)
    assert differ.status_code == 422
    assert "PASSWORDS_DIFFER" in field_problem(differ.text, "password_again")
    short = colleague.submit(welcome, welcome, {"password": "short", "password_again": "short"})
    assert short.status_code == 422 and 'id="f-password-problem"' in short.text
    done = colleague.submit(welcome, welcome, {"password": PASSWORD, "password_again": PASSWORD})
    assert done.status_code == 303
    assert log_in_customer(colleague, vendor, "colleague@customer.test").status_code == 303
    again = Browser(app).get(welcome)  # the link is spent
    assert again.status_code == 404 and "LINK_INVALID" in again.text
    assert "colleague@customer.test" in browser.get(users).text


def test_a_colleague_cannot_invite_or_see_the_users(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor = vendors.create()
    _, admin = customer_with_admin(database, vendor)
    browser = Browser(app)
    log_in_customer(browser, vendor, admin)
    users = f"/portal/{vendor.slug}/users"
    browser.submit(users, users, {"email": "member@customer.test"})
    token = LINK.search(inbox.text_of(inbox.messages[0]))
    assert token
    welcome = f"/portal/{vendor.slug}/welcome/{token.group(1)}"
    member = Browser(app)
    member.submit(welcome, welcome, {"password": PASSWORD, "password_again": PASSWORD})
    log_in_customer(member, vendor, "member@customer.test")
    assert member.get(users).status_code == 403
    refused = member.client.post(
        users, data={"email": "x@y.test", "csrf_token": member.token(f"/portal/{vendor.slug}/")}
    )
    assert refused.status_code == 403 and len(inbox.messages) == 1


def test_a_link_works_only_at_its_vendors_portal(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor, other = vendors.create(), vendors.create()
    _, admin = customer_with_admin(database, vendor)
    browser = Browser(app)
    log_in_customer(browser, vendor, admin)
    users = f"/portal/{vendor.slug}/users"
    browser.submit(users, users, {"email": "c@customer.test"})
    token = LINK.search(inbox.text_of(inbox.messages[0]))
    assert token
    assert Browser(app).get(f"/portal/{other.slug}/welcome/{token.group(1)}").status_code == 404


def test_an_invalid_address_is_said_next_to_the_field(
    app: FastAPI, vendors: VendorFactory, database: Database, inbox: Inbox
):
    vendor = vendors.create()
    _, admin = customer_with_admin(database, vendor)
    browser = Browser(app)
    log_in_customer(browser, vendor, admin)
    users = f"/portal/{vendor.slug}/users"
    answer = browser.submit(users, users, {"email": "not an address"})
    assert answer.status_code == 422 and "EMAIL_INVALID" in answer.text
    assert inbox.messages == []
