"""The customer admin's cloud containers in the portal: the list, registered computers
and their deregistration, and nobody else's containers."""

from __future__ import annotations

from fastapi import FastAPI

from licentia.server.db.engine import Database
from tests.factories import VendorFactory
from tests.integration.test_cloud import CloudUser
from tests.integration.web.cloud_desk import colleague, customer_container
from tests.integration.web.pages import Browser, log_in_customer, log_in_staff, staff_user


def test_a_customer_admin_lists_their_containers_and_only_theirs(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    theirs = customer_container(database, vendor, delivery="cloud")
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    page = browser.get(f"/portal/{vendor.slug}/containers")
    assert page.status_code == 200
    assert mine.container_id in page.text and theirs.container_id not in page.text


def test_a_customer_admin_deregisters_a_computer_and_its_place_is_free_again(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud", max_devices=1)
    old = CloudUser(vendor, mine.credential, "old laptop")
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    page = browser.get(here)
    assert page.status_code == 200 and "old laptop" in page.text and ".licred" in page.text
    device_id = vendor.ok("GET", f"/cloud-containers/{mine.container_id}")["devices"][0]["id"]
    done = browser.submit(here, f"{here}/devices/{device_id}/deregister", {})
    assert done.status_code == 303 and done.headers["location"] == here
    assert "Deregistered" in browser.get(here).text
    assert old.check(mine.product).json()["code"] == "DEVICE_DEREGISTERED"
    CloudUser(vendor, mine.credential, "new laptop")  # the one place is free again


def test_a_deregistration_without_the_forms_token_is_refused(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    user = CloudUser(vendor, mine.credential)
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    device_id = vendor.ok("GET", f"/cloud-containers/{mine.container_id}")["devices"][0]["id"]
    path = f"/portal/{vendor.slug}/containers/{mine.container_id}/devices/{device_id}/deregister"
    refused = browser.client.post(path, data={})
    assert refused.status_code == 403 and "CSRF_FAILED" in refused.text
    assert user.check(mine.product).status_code == 200


def test_another_customers_container_of_the_same_vendor_is_not_found(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    theirs = customer_container(database, vendor, delivery="cloud")
    user = CloudUser(vendor, theirs.credential)
    device_id = vendor.ok("GET", f"/cloud-containers/{theirs.container_id}")["devices"][0]["id"]
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    own = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    other = f"/portal/{vendor.slug}/containers/{theirs.container_id}"
    page = browser.get(other)
    assert page.status_code == 404 and "NOT_FOUND" in page.text
    tampered = browser.submit(own, f"{other}/devices/{device_id}/deregister", {})
    assert tampered.status_code == 404
    moved = browser.submit(own, f"{own}/devices/{device_id}/deregister", {})
    assert moved.status_code == 404 and "NOT_FOUND" in moved.text  # not one of this container's
    assert user.check(theirs.product).status_code == 200


def test_a_container_under_another_vendors_address_or_id_is_not_shown(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor, elsewhere = vendors.create(), vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    foreign = customer_container(database, elsewhere, delivery="cloud")
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    under_other = browser.get(f"/portal/{elsewhere.slug}/containers/{mine.container_id}")
    assert under_other.status_code == 303  # no customer of that vendor is logged in
    assert under_other.headers["location"] == f"/portal/{elsewhere.slug}/login"
    other_id = browser.get(f"/portal/{vendor.slug}/containers/{foreign.container_id}")
    assert other_id.status_code == 404


def test_the_containers_need_a_customer_admin(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    anonymous = Browser(app).get(f"/portal/{vendor.slug}/containers/{mine.container_id}")
    assert anonymous.status_code == 303
    browser = Browser(app)
    log_in_customer(browser, vendor, colleague(database, vendor, mine.customer_id))
    page = browser.get(f"/portal/{vendor.slug}/containers/{mine.container_id}")
    assert page.status_code == 403 and "FORBIDDEN" in page.text
    assert "/containers" not in browser.get(f"/portal/{vendor.slug}/").text


def test_the_containers_pages_speak_german(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    browser = Browser(app, language="de")
    log_in_customer(browser, vendor, mine.admin_email)
    page = browser.get(f"/portal/{vendor.slug}/containers/{mine.container_id}")
    assert page.status_code == 200 and "Registrierte Computer" in page.text


def test_a_customer_admin_renames_a_container_and_an_empty_name_is_refused_at_its_field(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    done = browser.submit(here, f"{here}/name", {"name": "  Design team  "})
    assert done.status_code == 303
    assert "Design team" in browser.get(f"/portal/{vendor.slug}/containers").text
    assert vendor.ok("GET", f"/cloud-containers/{mine.container_id}")["name"] == "Design team"
    refused = browser.submit(here, f"{here}/name", {"name": "   "})
    assert refused.status_code == 422
    assert 'id="f-name-problem" aria-live="polite"><span class="code">VALIDATION_FAILED' in (
        refused.text
    )
    assert vendor.ok("GET", f"/cloud-containers/{mine.container_id}")["name"] == "Design team"


def test_another_customers_container_cannot_be_renamed_nor_without_the_forms_token(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    theirs = customer_container(database, vendor, delivery="cloud")
    before = vendor.ok("GET", f"/cloud-containers/{theirs.container_id}")["name"]
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    own = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    other = f"/portal/{vendor.slug}/containers/{theirs.container_id}"
    assert browser.submit(own, f"{other}/name", {"name": "Taken"}).status_code == 404
    forged = browser.client.post(f"{own}/name", data={"name": "Forged"})
    assert forged.status_code == 403 and "CSRF_FAILED" in forged.text
    assert vendor.ok("GET", f"/cloud-containers/{theirs.container_id}")["name"] == before
    assert vendor.ok("GET", f"/cloud-containers/{mine.container_id}")["name"] != "Forged"


def test_a_vendors_staff_session_is_no_customer_admin_here(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    browser = Browser(app)
    log_in_staff(browser, vendor, staff_user(vendor))
    for path in ("", "/seats", "/counters"):
        page = browser.get(f"/portal/{vendor.slug}/containers/{mine.container_id}{path}")
        assert page.status_code == 303, path
        assert page.headers["location"] == f"/portal/{vendor.slug}/login"
