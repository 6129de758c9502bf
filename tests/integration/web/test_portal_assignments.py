"""Named licenses and seats: the customer admin names the company's licenses (a seat
pool: each of its seats) to its users and removes the names, in the portal; the
vendor does the same through the API. Never beyond the places a license has, never
another customer's license or person."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI
from playwright.sync_api import Page, expect

from licentia.server.customer_users.models import CustomerUser
from licentia.server.db.engine import Database
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.web.browser import WIDTHS, screenshot
from tests.integration.web.cloud_desk import colleague
from tests.integration.web.pages import Browser, customer_with_admin, log_in_customer


def _license(vendor: VendorHandle, customer_id: str, **options: object) -> str:
    template = vendor.template(options)
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer_id)
    return str(vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"][0])


def _user_id(database: Database, email: str) -> str:
    with database.read() as session:
        return session.query(CustomerUser.id).filter(CustomerUser.email == email).scalar()


def test_a_customer_admin_names_a_seat_pools_seats_and_removes_a_name(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    ann, bob = (colleague(database, vendor, customer_id) for _ in range(2))
    pool = _license(vendor, customer_id, delivery="seat_pool", seats=2)
    browser = Browser(app)
    log_in_customer(browser, vendor, admin_email)
    here = f"/portal/{vendor.slug}/users"
    page = browser.get(here).text
    assert "2 seats, 2 free" in page
    template_id = vendor.ok("GET", f"/licenses/{pool}")["template_id"]
    assert vendor.ok("GET", f"/templates/{template_id}")["name"] + " · " in page
    for email in (ann, bob):
        done = browser.submit(
            here,
            f"{here}/assignments",
            {"license_id": pool, "user_id": _user_id(database, email)},
        )
        assert done.status_code == 303
    page = browser.get(here).text
    assert "2 seats, 0 free" in page and "every place is named" in page
    named = vendor.ok("GET", f"/licenses/{pool}/assignments")
    assert [item["email"] for item in named] == [ann, bob]

    full = browser.submit(
        here,
        f"{here}/assignments",
        {"license_id": pool, "user_id": _user_id(database, admin_email)},
    )
    assert full.status_code == 409 and "ASSIGNMENT_LIMIT_REACHED" in full.text
    removed = browser.submit(
        here, f"{here}/assignments/remove", {"license_id": pool, "user_id": _user_id(database, ann)}
    )
    assert removed.status_code == 303
    assert [item["email"] for item in vendor.ok("GET", f"/licenses/{pool}/assignments")] == [bob]
    assert "2 seats, 1 free" in browser.get(here).text


def test_the_vendor_names_through_the_api_with_the_same_rules(
    vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    _, stranger = customer_with_admin(database, vendor)
    single = _license(vendor, customer_id)
    me, them = _user_id(database, admin_email), _user_id(database, stranger)
    path = f"/licenses/{single}/assignments"
    first = vendor.ok("PUT", f"{path}/{me}")
    assert first["email"] == admin_email
    assert vendor.ok("PUT", f"{path}/{me}") == first  # idempotent
    helper = colleague(database, vendor, customer_id)
    full = vendor.request("PUT", f"{path}/{_user_id(database, helper)}")
    assert full.status_code == 409 and full.json()["code"] == "ASSIGNMENT_LIMIT_REACHED"
    foreign = vendor.request("PUT", f"{path}/{them}")
    assert foreign.status_code == 404  # a person of another customer
    missing = vendor.request("DELETE", f"{path}/{them}")
    assert missing.status_code == 404 and missing.json()["code"] == "ASSIGNMENT_NOT_FOUND"
    assert vendor.request("DELETE", f"{path}/{me}").status_code == 204
    assert vendor.ok("GET", path) == []
    elsewhere = vendors.create()
    assert elsewhere.request("GET", path).status_code == 404  # another vendor's license
    audit = vendor.ok("GET", f"/audit-events?object_id={single}")["items"]
    actions = [event["action"] for event in audit]
    assert actions.count("license.assigned") == 1 and actions.count("license.unassigned") == 1


def test_concurrent_names_never_exceed_the_seats(vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    customer_id, _ = customer_with_admin(database, vendor)
    pool = _license(vendor, customer_id, delivery="seat_pool", seats=2)
    people = [_user_id(database, colleague(database, vendor, customer_id)) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=3) as pool_of_threads:
        answers = list(
            pool_of_threads.map(
                lambda person: (
                    vendor.request("PUT", f"/licenses/{pool}/assignments/{person}").status_code
                ),
                people,
            )
        )
    assert sorted(answers) == [200, 200, 409, 409, 409, 409]
    assert len(vendor.ok("GET", f"/licenses/{pool}/assignments")) == 2


def test_another_customers_license_or_person_cannot_be_named_nor_without_the_token(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    other_customer, stranger = customer_with_admin(database, vendor)
    mine = _license(vendor, customer_id, delivery="seat_pool", seats=3)
    theirs = _license(vendor, other_customer, delivery="seat_pool", seats=3)
    me, them = _user_id(database, admin_email), _user_id(database, stranger)
    vendor.ok("PUT", f"/licenses/{theirs}/assignments/{them}")
    browser = Browser(app)
    log_in_customer(browser, vendor, admin_email)
    here = f"/portal/{vendor.slug}/users"
    assert theirs not in browser.get(here).text
    for license_id, person, action in (
        (theirs, me, "assignments"),  # their license
        (mine, them, "assignments"),  # their person
        (theirs, them, "assignments/remove"),  # their name
    ):
        tampered = browser.submit(
            here, f"{here}/{action}", {"license_id": license_id, "user_id": person}
        )
        assert tampered.status_code == 404 and "NOT_FOUND" in tampered.text, action
    forged = browser.client.post(f"{here}/assignments", data={"license_id": mine, "user_id": me})
    assert forged.status_code == 403 and "CSRF_FAILED" in forged.text
    assert vendor.ok("GET", f"/licenses/{mine}/assignments") == []
    assert [item["email"] for item in vendor.ok("GET", f"/licenses/{theirs}/assignments")] == [
        stranger
    ]
    helper = Browser(app)
    log_in_customer(helper, vendor, colleague(database, vendor, customer_id))
    refused = helper.client.post(
        f"{here}/assignments",
        data={
            "license_id": mine,
            "user_id": me,
            "csrf_token": helper.token(f"/portal/{vendor.slug}/"),
        },
    )
    assert refused.status_code == 403 and "FORBIDDEN" in refused.text


def test_the_names_speak_german(app: FastAPI, vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    _license(vendor, customer_id, delivery="seat_pool", seats=2)
    browser = Browser(app, language="de")
    log_in_customer(browser, vendor, admin_email)
    assert "Benannte Lizenzen und Plätze" in browser.get(f"/portal/{vendor.slug}/users").text


def test_a_customer_admin_names_a_seat_in_the_browser(
    page: Page, live_server: str, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    ann = colleague(database, vendor, customer_id)
    pool = _license(vendor, customer_id, delivery="seat_pool", seats=2)
    page.goto(f"{live_server}/portal/{vendor.slug}/login")
    page.get_by_label("E-mail").fill(admin_email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Users").click()
    row = page.locator(f"#license-{pool}")
    row.get_by_label("Person for").select_option(label=ann)
    row.get_by_role("button", name="Name it").click()
    expect(row).to_contain_text("2 seats, 1 free")
    expect(row.get_by_role("button", name=f"Remove {ann}")).to_be_visible()
    screenshot(page, "portal-users-named")
    row.get_by_role("button", name=f"Remove {ann}").click()
    expect(page.locator(f"#license-{pool}")).to_contain_text("2 seats, 2 free")
    page.set_viewport_size({"width": WIDTHS["phone"], "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTHS["phone"]
    screenshot(page, "portal-users-named")


def test_a_removed_colleague_is_logged_out_and_their_names_are_freed(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    ann = colleague(database, vendor, customer_id)
    pool = _license(vendor, customer_id, delivery="seat_pool", seats=1)
    vendor.ok("PUT", f"/licenses/{pool}/assignments/{_user_id(database, ann)}")
    theirs = Browser(app)
    log_in_customer(theirs, vendor, ann)
    assert theirs.get(f"/portal/{vendor.slug}/").text.count(ann) == 1  # logged in
    browser = Browser(app)
    log_in_customer(browser, vendor, admin_email)
    here = f"/portal/{vendor.slug}/users"
    done = browser.submit(here, f"{here}/{_user_id(database, ann)}/remove", {})
    assert done.status_code == 303
    page = browser.get(done.headers["location"]).text
    assert "The colleague was removed" in page and "1 seat, 1 free" in page
    assert vendor.ok("GET", f"/licenses/{pool}/assignments") == []
    assert ann not in theirs.get(f"/portal/{vendor.slug}/").text  # their session ended
    again = Browser(app)
    assert log_in_customer(again, vendor, ann).status_code == 401
    twice = browser.submit(here, f"{here}/{_user_id(database, ann)}/remove", {})
    assert twice.status_code == 404


def test_removing_a_colleague_asks_first(app: FastAPI, vendors: VendorFactory, database: Database):
    """The users page's button leads to a page that asks; only its form removes (no
    script needed), and "keep them" leads back with nobody removed."""
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    ann = colleague(database, vendor, customer_id)
    browser = Browser(app)
    log_in_customer(browser, vendor, admin_email)
    here = f"/portal/{vendor.slug}/users"
    users = browser.get(here).text
    link = re.search(rf'href="([^"]+/remove)">Remove {re.escape(ann)} from the company', users)
    assert link, users
    assert f'action="{link.group(1)}"' not in users  # no form of the list removes anybody
    asked = browser.get(link.group(1))
    assert asked.status_code == 200 and f"Remove {ann} from the company?" in asked.text
    assert f'action="{link.group(1)}"' in asked.text and f'href="{here}">Keep them' in asked.text
    assert log_in_customer(Browser(app), vendor, ann).status_code == 303  # asking removed nobody
    done = browser.submit(link.group(1), link.group(1), {})
    assert done.status_code == 303 and done.headers["location"].endswith("?removed=1")
    assert log_in_customer(Browser(app), vendor, ann).status_code == 401
    assert browser.get(link.group(1)).status_code == 404  # removed already: nothing to ask
    admin_page = f"{here}/{_user_id(database, admin_email)}/remove"
    assert browser.get(admin_page).status_code == 404  # the customer admin is not removable


def test_nobody_else_is_removed(app: FastAPI, vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    customer_id, admin_email = customer_with_admin(database, vendor)
    other_customer, _ = customer_with_admin(database, vendor)
    stranger = colleague(database, vendor, other_customer)
    mine = colleague(database, vendor, customer_id)
    browser = Browser(app)
    log_in_customer(browser, vendor, admin_email)
    here = f"/portal/{vendor.slug}/users"
    for person in (stranger, admin_email):  # another customer's; the customer admin
        refused = browser.submit(here, f"{here}/{_user_id(database, person)}/remove", {})
        assert refused.status_code == 404 and "NOT_FOUND" in refused.text
    forged = browser.client.post(f"{here}/{_user_id(database, mine)}/remove", data={})
    assert forged.status_code == 403 and "CSRF_FAILED" in forged.text
    helper = Browser(app)
    log_in_customer(helper, vendor, mine)
    as_colleague = helper.client.post(
        f"{here}/{_user_id(database, mine)}/remove",
        data={"csrf_token": helper.token(f"/portal/{vendor.slug}/")},
    )
    assert as_colleague.status_code == 403
    for person in (stranger, mine):
        assert log_in_customer(Browser(app), vendor, person).status_code == 303
