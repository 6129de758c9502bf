"""The customer admin resets a cloud container's credential in the portal and gets the
new ``.licred`` file: the real SDK registered with the old file is told the credential
was reset, and registers again with the new one. Only after an explicit confirmation,
only for the company's own containers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi import FastAPI

from licentia.client import CloudClient, CredentialResetError
from licentia.server.db.engine import Database
from licentia.server.settings import Settings
from tests.factories import VendorFactory
from tests.integration.test_cloud import CloudUser
from tests.integration.web.cloud_desk import colleague, customer_container
from tests.integration.web.pages import Browser, log_in_customer


def test_a_reset_answers_the_new_file_and_the_sdk_registers_again_with_it(
    app: FastAPI,
    vendors: VendorFactory,
    database: Database,
    settings: Settings,
    live_server: str,
    tmp_path: Path,
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud", max_devices=1)
    jwks = vendor.ok("GET", f"/vendors/{vendor.slug}/jwks.json")
    old_file = tmp_path / "old.licred"
    old_file.write_text(
        json.dumps(
            {
                "server_url": live_server,
                "vendor": vendor.slug,
                "container_id": mine.container_id,
                "credential": mine.credential,
            }
        )
    )
    state = tmp_path / "pc"
    client = CloudClient(old_file, public_keys=jwks, state_dir=state, device_name="office-pc")
    assert client.check(mine.product).license_id == mine.license_id
    client.close()

    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    answer = browser.submit(here, f"{here}/credential", {"understood": "yes"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].endswith('.licred"')
    document = json.loads(answer.text)
    assert document["licred"] == 1 and document["server_url"] == settings.public_url
    assert document["container_id"] == mine.container_id
    assert document["credential"] != mine.credential
    new_file = tmp_path / "new.licred"
    new_file.write_bytes(answer.content)
    assert "must register again" in browser.get(here).text  # office-pc, on the old file

    stale = CloudClient(old_file, public_keys=jwks, state_dir=state, device_name="office-pc")
    with pytest.raises(CredentialResetError):
        stale.check(mine.product)
    stale.close()
    fresh = CloudClient(
        new_file, public_keys=jwks, state_dir=state, device_name="office-pc", server_url=live_server
    )
    try:  # the one place is free again: the old registration no longer counts
        assert fresh.check(mine.product).license_id == mine.license_id
    finally:
        fresh.close()


def test_without_the_confirmation_nothing_is_reset(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    user = CloudUser(vendor, mine.credential)
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    here = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    refused = browser.submit(here, f"{here}/credential", {})
    assert refused.status_code == 422
    assert 'id="f-understood-problem" aria-live="polite"><span class="code">VALIDATION_FAILED' in (
        refused.text
    )
    assert user.check(mine.product).status_code == 200
    assert vendor.ok("GET", f"/cloud-containers/{mine.container_id}")["credential_version"] == 1


def test_nobody_else_resets_the_credential(
    app: FastAPI, vendors: VendorFactory, database: Database
):
    vendor, elsewhere = vendors.create(), vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    theirs = customer_container(database, vendor, delivery="cloud")
    foreign = customer_container(database, elsewhere, delivery="cloud")
    browser = Browser(app)
    log_in_customer(browser, vendor, mine.admin_email)
    own = f"/portal/{vendor.slug}/containers/{mine.container_id}"
    for other in (theirs.container_id, foreign.container_id):
        tampered = browser.submit(
            own,
            f"/portal/{vendor.slug}/containers/{other}/credential",
            {"understood": "yes"},
        )
        assert tampered.status_code == 404 and "NOT_FOUND" in tampered.text
    forged = browser.client.post(f"{own}/credential", data={"understood": "yes"})
    assert forged.status_code == 403 and "CSRF_FAILED" in forged.text
    other_vendor = browser.submit(
        own,
        f"/portal/{elsewhere.slug}/containers/{foreign.container_id}/credential",
        {"understood": "yes"},
    )
    assert other_vendor.status_code == 303  # no customer of that vendor is logged in
    helper = Browser(app)
    log_in_customer(helper, vendor, colleague(database, vendor, mine.customer_id))
    as_colleague = helper.client.post(
        f"{own}/credential",
        data={"understood": "yes", "csrf_token": helper.token(f"/portal/{vendor.slug}/")},
    )
    assert as_colleague.status_code == 403 and "FORBIDDEN" in as_colleague.text
    for container in (mine, theirs, foreign):
        owner = vendor if container is not foreign else elsewhere
        detail = owner.ok("GET", f"/cloud-containers/{container.container_id}")
        assert detail["credential_version"] == 1


def test_the_reset_speaks_german(app: FastAPI, vendors: VendorFactory, database: Database):
    vendor = vendors.create()
    mine = customer_container(database, vendor, delivery="cloud")
    browser = Browser(app, language="de")
    log_in_customer(browser, vendor, mine.admin_email)
    page = browser.get(f"/portal/{vendor.slug}/containers/{mine.container_id}")
    assert "Zugang zurücksetzen und neue Datei herunterladen" in page.text
