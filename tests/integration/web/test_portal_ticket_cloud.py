"""A customer admin puts a ticket's cloud and seat-pool licenses into one of the
company's cloud containers from the ticket's page, or into a new one whose credential
file the real SDK registers with; nobody else's ticket or container can be named."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from fastapi import FastAPI

from licentia.client import CloudClient, CloudCredential
from licentia.server.db.engine import Database
from licentia.server.settings import Settings
from tests.factories import VendorFactory, VendorHandle
from tests.integration.web.cloud_desk import colleague, customer_container
from tests.integration.web.pages import Browser, customer_with_admin, log_in_customer


def _cloud_order(vendor: VendorHandle, customer_id: str, **options: object) -> dict[str, str]:
    template = vendor.template({"delivery": "seat_pool", "seats": 2, **options})
    return vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer_id)


def _license(vendor: VendorHandle, order: dict[str, str]) -> dict[str, object]:
    ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    return vendor.ok("GET", f"/licenses/{ticket['license_ids'][0]}")


def test_a_ticket_goes_into_one_of_the_companys_containers(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    order = _cloud_order(vendor, mine.customer_id)
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/tickets/{order['ticket_id']}"
    page = browser.get(here)
    assert "Put the licenses into the container" in page.text
    assert f'<option value="{mine.container_id}"' in page.text
    done = browser.submit(here, f"{here}/cloud", {"container_id": mine.container_id})
    assert done.status_code == 303 and done.headers["location"] == here
    after = browser.get(here).text
    assert "in the cloud container" in after and "Put the licenses into the container" not in after
    license_ = _license(vendor, order)
    assert license_["state"] == "activated" and license_["container_id"] == mine.container_id
    again = browser.submit(here, f"{here}/cloud", {"container_id": mine.container_id})
    assert again.status_code == 303  # the same container again changes nothing


def test_a_new_container_comes_as_a_licred_file_the_sdk_registers_with(
    app: FastAPI,
    vendors: VendorFactory,
    database: Database,
    settings: Settings,
    live_server: str,
    tmp_path: Path,
):
    vendor = vendors.create()
    customer_id, email = customer_with_admin(database, vendor)
    order = _cloud_order(vendor, customer_id, max_devices=2)
    browser = Browser(app)
    log_in_customer(browser, vendor, email)
    here = f"/portal/{vendor.slug}/tickets/{order['ticket_id']}"
    assert 'name="name" type="text" value=""' in browser.get(here).text  # no name given
    answer = browser.submit(here, f"{here}/cloud", {"container_id": "new", "name": "Design team"})
    assert answer.status_code == 201, answer.text
    assert "The licenses are in the new cloud container “Design team”" in answer.text
    link = re.search(
        r'href="data:application/json;base64,([A-Za-z0-9+/=]+)" download="Design-team.licred"',
        answer.text,
    )
    assert link, answer.text
    content = base64.b64decode(link.group(1))
    document = json.loads(content)
    assert document["server_url"] == settings.public_url and document["vendor"] == vendor.slug
    path = tmp_path / "Design-team.licred"
    path.write_bytes(content)

    credential = CloudCredential.load(path)  # the SDK's own reader
    license_ = _license(vendor, order)
    assert license_["container_id"] == credential.container_id
    assert f"/containers/{credential.container_id}" in answer.text  # the way to it
    ticket = browser.get(here).text
    assert "in the cloud container Design team" in ticket and f"{here}/cloud" not in ticket
    container = vendor.ok("GET", f"/cloud-containers/{credential.container_id}")
    assert container["name"] == "Design team" and container["customer_id"] == customer_id
    assert container["max_devices"] == 2
    jwks = vendor.ok("GET", f"/vendors/{vendor.slug}/jwks.json")
    client = CloudClient(
        path,
        public_keys=jwks,
        state_dir=tmp_path / "pc",
        device_name="office-pc",
        server_url=live_server,  # the file names the public URL; the test's server is here
    )
    try:
        with client.seat(str(license_["product_code"]), user="ann"):
            seats = vendor.ok("GET", f"/licenses/{license_['id']}/seats")["items"]
            assert [seat["user"] for seat in seats if seat["user"]] == ["ann"]
    finally:
        client.close()
    containers = browser.get(f"/portal/{vendor.slug}/containers").text
    assert "Design team" in containers


def test_a_refusal_is_shown_at_the_container_field(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    other = customer_container(
        database, vendor, (mine.customer_id, mine.admin_email), delivery="cloud"
    )
    order = _cloud_order(vendor, mine.customer_id)
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/tickets/{order['ticket_id']}"
    browser.submit(here, f"{here}/cloud", {"container_id": mine.container_id})
    moved = browser.submit(here, f"{here}/cloud", {"container_id": other.container_id})
    assert moved.status_code == 409 and 'id="f-container_id-problem"' in moved.text
    assert "ALREADY_REDEEMED" in moved.text
    empty = browser.submit(here, f"{here}/cloud", {"container_id": "new", "name": "  "})
    assert empty.status_code == 422 and 'id="f-name-problem"' in empty.text
    assert "Give it a name of 1 to 200 characters." in empty.text
    assert _license(vendor, order)["container_id"] == mine.container_id


def test_another_customers_ticket_or_container_cannot_be_named(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor, elsewhere = vendors.create(), vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    theirs = customer_container(database, vendor, delivery="cloud")
    foreign = customer_container(database, elsewhere, delivery="cloud")
    my_order = _cloud_order(vendor, mine.customer_id)
    their_order = _cloud_order(vendor, theirs.customer_id)
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    own = f"/portal/{vendor.slug}/tickets/{my_order['ticket_id']}"
    other = f"/portal/{vendor.slug}/tickets/{their_order['ticket_id']}"
    into_mine = browser.submit(own, f"{other}/cloud", {"container_id": mine.container_id})
    assert into_mine.status_code == 404 and "NOT_FOUND" in into_mine.text
    new = browser.submit(own, f"{other}/cloud", {"container_id": "new", "name": "Mine now"})
    assert new.status_code == 404
    into_theirs = browser.submit(own, f"{own}/cloud", {"container_id": theirs.container_id})
    assert into_theirs.status_code == 404
    into_foreign = browser.submit(own, f"{own}/cloud", {"container_id": foreign.container_id})
    assert into_foreign.status_code == 404
    under_other_vendor = browser.submit(
        own,
        f"/portal/{elsewhere.slug}/tickets/{my_order['ticket_id']}/cloud",
        {"container_id": mine.container_id},
    )
    assert under_other_vendor.status_code == 303  # no customer of that vendor is logged in
    forged = browser.client.post(f"{own}/cloud", data={"container_id": mine.container_id})
    assert forged.status_code == 403 and "CSRF_FAILED" in forged.text
    assert _license(vendor, my_order)["container_id"] is None
    assert _license(vendor, their_order)["container_id"] is None


def test_a_colleague_is_told_who_does_it_and_may_not(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    order = _cloud_order(vendor, mine.customer_id)
    browser = Browser(app)
    log_in_customer(browser, vendor, colleague(database, vendor, mine.customer_id))
    here = f"/portal/{vendor.slug}/tickets/{order['ticket_id']}"
    page = browser.get(here)
    assert "customer admin puts them into a cloud container" in page.text
    assert "Put the licenses into the container" not in page.text
    refused = browser.submit(here, f"{here}/cloud", {"container_id": mine.container_id})
    assert refused.status_code == 403 and "FORBIDDEN" in refused.text
    assert _license(vendor, order)["container_id"] is None


def test_the_form_speaks_german(app: FastAPI, vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    customer_id, email = customer_with_admin(database, vendor)
    order = _cloud_order(vendor, customer_id)
    browser = Browser(app, language="de")
    log_in_customer(browser, vendor, email)
    page = browser.get(f"/portal/{vendor.slug}/tickets/{order['ticket_id']}")
    assert "In den Container legen" in page.text
