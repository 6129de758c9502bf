"""The console's API keys (created with scopes, the secret shown once, revoked, last
use shown) and signing keys (rotated, retired)."""

from __future__ import annotations

import re

from fastapi import FastAPI

from tests.factories import VendorFactory
from tests.integration.web.console import post_forms, staff_browser, submit_many
from tests.integration.web.staff import field_problem

SECRET = re.compile(r'id="api-key-secret">(lic_[^<]+)<')


def test_a_new_key_is_shown_once_and_works_with_its_scopes(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    data = {"name": "ERP", "scopes": ["catalog:read"]}
    answer = submit_many(browser, "/console/api-keys", "/console/api-keys", data)
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    found = SECRET.search(answer.text)
    assert found
    secret = found.group(1)
    assert vendor.request("GET", "/products", token=secret).status_code == 200
    assert vendor.request("GET", "/licenses", token=secret).status_code == 403
    page = browser.get("/console/api-keys")
    assert secret not in page.text and "ERP" in page.text
    assert "never" not in page.text.split("ERP")[1].split("</tr>")[0]  # last used now


def test_a_scope_the_member_does_not_hold_is_refused_next_to_the_scopes(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    answer = submit_many(browser, "/console/api-keys", "/console/api-keys", {"name": "x"})
    problem = answer.text.split('id="f-scopes-problem"')[1].split("</p>")[0]
    assert answer.status_code == 422 and "VALIDATION_FAILED" in problem
    assert not SECRET.search(answer.text)


def test_revoke_a_key(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    secret = vendor.new_api_key(["catalog:read"])
    browser = staff_browser(app, vendor)
    keys = vendor.ok("GET", "/api-keys")["items"]
    key_id = next(key["id"] for key in keys if key["name"] == "test")
    listed = browser.get("/console/api-keys").text
    assert f'href="/console/api-keys/{key_id}/revoke"' in listed  # a step, not a post
    assert f'action="/console/api-keys/{key_id}/revoke"' not in listed
    confirm = f"/console/api-keys/{key_id}/revoke"
    asked = browser.get(confirm)
    assert asked.status_code == 200 and "Revoke this API key?" in asked.text
    assert 'name="understood" value="yes" required' in asked.text
    unticked = browser.submit(confirm, confirm, {})
    assert unticked.status_code == 422 and 'id="f-understood-problem"' in unticked.text
    assert "Tick the box" in field_problem(unticked.text, "understood")
    assert vendor.request("GET", "/products", token=secret).status_code == 200
    answer = browser.submit(confirm, confirm, {"understood": "yes"})
    assert answer.status_code == 303
    assert vendor.request("GET", "/products", token=secret).status_code == 401


def test_rotate_and_retire_signing_keys_and_the_current_key_is_refused(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = staff_browser(app, vendor)
    [old] = vendor.ok("GET", "/signing-keys")["items"]
    page = "/console/signing-keys"
    assert browser.submit(page, f"{page}/rotate", {}).status_code == 303
    keys = {key["kid"]: key["status"] for key in vendor.ok("GET", "/signing-keys")["items"]}
    current = next(kid for kid, status in keys.items() if status == "current")
    ticked = {"understood": "yes"}
    refused = browser.submit(page, f"{page}/{current}/retire", ticked)
    assert refused.status_code == 409 and "KEY_IS_CURRENT" in refused.text
    confirm = f"{page}/{old['kid']}/retire"
    assert f'href="{confirm}"' in browser.get(page).text
    assert "Retire this signing key?" in browser.get(confirm).text
    assert browser.submit(page, confirm, {}).status_code == 422  # the box not ticked
    assert browser.submit(page, confirm, ticked).status_code == 303
    retired = {key["kid"]: key["status"] for key in vendor.ok("GET", "/signing-keys")["items"]}
    assert retired[old["kid"]] == "retired"


def test_a_read_only_member_sees_keys_but_cannot_act(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    browser = staff_browser(app, vendor, "read-only")
    [key] = vendor.ok("GET", "/signing-keys")["items"]
    for page in ("/console/api-keys", "/console/signing-keys"):
        shown = browser.get(page)
        assert shown.status_code == 200 and post_forms(shown.text) == []
    data = {"name": "x", "scopes": ["catalog:read"]}
    assert submit_many(browser, "/console/api-keys", "/console/api-keys", data).status_code == 403
    page = "/console/signing-keys"
    assert browser.submit(page, f"{page}/rotate", {}).status_code == 403
    assert browser.submit(page, f"{page}/{key['kid']}/retire", {}).status_code == 403
    assert browser.get(f"{page}/{key['kid']}/retire").status_code == 403
    assert len(vendor.ok("GET", "/signing-keys")["items"]) == 1


def test_a_support_member_does_not_see_keys(app: FastAPI, vendors: VendorFactory):
    browser = staff_browser(app, vendors.create(), "sales")
    answer = browser.get("/console/api-keys")
    assert answer.status_code == 403 and "FORBIDDEN" in answer.text


def test_another_vendors_keys_are_not_found_and_not_changed(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    browser = staff_browser(app, mine)
    key_id = theirs.ok("GET", "/api-keys")["items"][0]["id"]
    [signing] = theirs.ok("GET", "/signing-keys")["items"]
    theirs.ok("POST", "/signing-keys/rotate")
    ticked = {"understood": "yes"}
    for data in ({}, ticked):
        revoke = browser.submit("/console/api-keys", f"/console/api-keys/{key_id}/revoke", data)
        assert revoke.status_code == 404
    assert browser.get(f"/console/api-keys/{key_id}/revoke").status_code == 404
    page = "/console/signing-keys"
    assert browser.submit(page, f"{page}/{signing['kid']}/retire", ticked).status_code == 404
    assert browser.get(f"{page}/{signing['kid']}/retire").status_code == 404
    assert theirs.get("/products").status_code == 200  # their admin key still works
    statuses = {k["kid"]: k["status"] for k in theirs.ok("GET", "/signing-keys")["items"]}
    assert statuses[signing["kid"]] == "previous"
    assert signing["kid"] not in browser.get(page).text
