"""Who is locked out after failed logins, on the pages of those who may let them in
again: a vendor's admins on the console's staff page, the customer admin on the portal's
users page (the lock itself: tests/integration/test_login_locks.py)."""

from __future__ import annotations

import re

from fastapi import FastAPI

from licentia.domain.actors import operator
from licentia.server.customer_users.services import create_customer_user
from licentia.server.db.engine import Database
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.web.console import staff_browser
from tests.integration.web.pages import (
    Browser,
    customer_with_admin,
    log_in_customer,
    log_in_staff,
    staff_user,
)


def _lock_staff(app: FastAPI, vendor: VendorHandle, email: str) -> None:
    wrong = {"vendor": vendor.slug, "email": email, "password": "wrong password!"}
    for _ in range(5):
        assert Browser(app).submit("/console/login", "/console/login", wrong).status_code == 401
    assert log_in_staff(Browser(app), vendor, email).status_code == 429


def _row_of(html: str, email: str) -> str:
    return html.split(email, 1)[1].split("</tr>", 1)[0]


def test_the_staff_page_shows_a_locked_colleague_and_an_admin_unlocks_them(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    admin = staff_browser(app, vendor)
    colleague = staff_user(vendor, "support")
    _lock_staff(app, vendor, colleague)

    row = _row_of(admin.get("/console/staff").text, colleague)
    assert "locked until" in row and "5 failed logins in a row" in row
    assert f'aria-label="Unlock {colleague}"' in row
    reader = staff_browser(app, vendor, "read-only")
    seen = _row_of(reader.get("/console/staff").text, colleague)
    assert "locked until" in seen and "/unlock" not in seen  # sees, may not unlock

    unlocked = admin.submit("/console/staff", _unlock_action(admin, colleague), {})
    assert unlocked.status_code == 303 and unlocked.headers["location"].endswith("done=unlocked")
    page = admin.get(unlocked.headers["location"]).text
    assert "it may log in again at once" in page
    assert "no failures" in _row_of(page, colleague)
    assert log_in_staff(Browser(app), vendor, colleague).status_code == 303


def _unlock_action(browser: Browser, email: str) -> str:
    found = re.search(
        r'action="(/console/staff/[^"]+/unlock)"',
        _row_of(browser.get("/console/staff").text, email),
    )
    assert found, f"no unlock offered for {email}"
    return found.group(1)


def test_a_read_only_member_cannot_unlock(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    admin = staff_browser(app, vendor)
    colleague = staff_user(vendor, "support")
    _lock_staff(app, vendor, colleague)
    action = _unlock_action(admin, colleague)
    reader = staff_browser(app, vendor, "read-only")
    assert reader.submit("/console/staff", action, {}).status_code == 403
    assert log_in_staff(Browser(app), vendor, colleague).status_code == 429


def test_the_staff_page_in_german_says_until_when(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    admin = Browser(app, language="de")
    log_in_staff(admin, vendor, staff_user(vendor))
    colleague = staff_user(vendor, "sales")
    _lock_staff(app, vendor, colleague)
    row = _row_of(admin.get("/console/staff").text, colleague)
    assert "gesperrt bis" in row and "5 fehlgeschlagene Anmeldungen in Folge" in row
    assert f'aria-label="{colleague} entsperren"' in row


def test_the_customer_admin_sees_and_unlocks_a_locked_colleague(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    colleague = f"colleague-{vendor.unique('c')}@customer.test"
    with database.transaction() as session:
        create_customer_user(
            session,
            operator(vendor.id),
            customer_id,
            email=colleague,
            role="member",
            password=PASSWORD,
        )
    login = f"/portal/{vendor.slug}/login"
    for _ in range(5):
        Browser(app).submit(login, login, {"email": colleague, "password": "wrong password!"})
    assert log_in_customer(Browser(app), vendor, colleague).status_code == 429

    admin = Browser(app)
    log_in_customer(admin, vendor, admin_email)
    users = f"/portal/{vendor.slug}/users"
    item = admin.get(users).text.split(colleague, 1)[1].split("</li>", 1)[0]
    assert "locked until" in item and "5 failed logins in a row" in item
    unlock = re.search(r'action="(/portal/[^"]+/unlock)"', item)
    assert unlock, item
    action = unlock.group(1)
    answer = admin.submit(users, action, {})
    assert answer.status_code == 303
    assert "it may log in again at once" in admin.get(answer.headers["location"]).text
    assert log_in_customer(Browser(app), vendor, colleague).status_code == 303

    # A colleague is no admin: the unlock is refused.
    member = Browser(app)
    log_in_customer(member, vendor, colleague)
    refused = member.client.post(
        action, data={"csrf_token": member.token(f"/portal/{vendor.slug}/")}
    )
    assert refused.status_code == 403


def _locked_customer_user(
    app: FastAPI, vendor: VendorHandle, database: Database
) -> tuple[str, str]:
    """A customer whose user is locked out of the portal after five wrong passwords;
    the customer's id and the user's e-mail."""
    customer_id, _ = customer_with_admin(database, vendor)
    email = f"colleague-{vendor.unique('c')}@customer.test"
    with database.transaction() as session:
        create_customer_user(
            session, operator(vendor.id), customer_id, email=email, role="member", password=PASSWORD
        )
    login = f"/portal/{vendor.slug}/login"
    for _ in range(5):
        Browser(app).submit(login, login, {"email": email, "password": "wrong password!"})
    assert log_in_customer(Browser(app), vendor, email).status_code == 429
    return customer_id, email


def test_vendor_staff_see_a_customers_locked_user_and_unlock_them(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    customer_id, locked = _locked_customer_user(app, vendor, database)
    page = f"/console/customers/{customer_id}"
    support = staff_browser(app, vendor, "support")
    row = _row_of(support.get(page).text, locked)
    assert "locked until" in row and "5 failed logins in a row" in row
    unlock = re.search(r'action="(/console/customers/[^"]+/unlock)"', row)
    assert unlock, row
    reader = staff_browser(app, vendor, "read-only")
    seen = _row_of(reader.get(page).text, locked)
    assert "locked until" in seen and "/unlock" not in seen  # sees, may not unlock
    assert reader.submit(page, unlock.group(1), {}).status_code == 403
    assert log_in_customer(Browser(app), vendor, locked).status_code == 429

    answer = support.submit(page, unlock.group(1), {})
    assert answer.status_code == 303
    after = support.get(answer.headers["location"]).text
    assert "it may log in again at once" in after and "no failures" in _row_of(after, locked)
    assert log_in_customer(Browser(app), vendor, locked).status_code == 303
    events = vendor.ok("GET", "/audit-events", params={"action": "login.unlocked"})["items"]
    assert [event["object_type"] for event in events] == ["customer_user"]


def test_staff_cannot_unlock_another_vendors_or_another_customers_user(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor, other = vendors.create(), vendors.create()
    customer_id, locked = _locked_customer_user(app, vendor, database)
    second_customer, _ = customer_with_admin(database, vendor)
    admin = staff_browser(app, vendor)
    action = re.search(
        r'action="(/console/customers/[^"]+/unlock)"',
        _row_of(admin.get(f"/console/customers/{customer_id}").text, locked),
    )
    assert action
    user_part = action.group(1).rsplit("/users/", 1)[1]
    elsewhere = f"/console/customers/{second_customer}/users/{user_part}"
    assert admin.submit("/console/customers", elsewhere, {}).status_code == 404
    stranger = staff_browser(app, other)
    assert stranger.submit("/console/customers", action.group(1), {}).status_code == 404
    assert log_in_customer(Browser(app), vendor, locked).status_code == 429
