"""The console's license pages: a list filtered by state, product, customer and device
(filters kept in the address), a license's detail with its history, and the vendor's
actions with the state machine's refusals shown."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI

from tests.factories import VendorFactory, VendorHandle
from tests.integration.device_messages import activate_device
from tests.integration.web.console import post_forms, staff_browser
from tests.integration.web.staff import field_problem


def _state(vendor: VendorHandle, license_id: str) -> str:
    return str(vendor.ok("GET", f"/licenses/{license_id}")["state"])


def _licenses_of(vendor: VendorHandle, order: dict[str, Any]) -> list[str]:
    return list(vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"])


def test_the_list_filters_by_state_and_product_and_keeps_the_filters(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    kept, other = vendor.license(), vendor.license()
    vendor.ok("POST", f"/licenses/{kept['id']}/actions/suspend")
    browser = staff_browser(app, vendor)
    page = browser.get("/console/licenses?state=suspended")
    assert page.status_code == 200
    assert kept["id"] in page.text and other["id"] not in page.text
    assert '<option value="suspended" selected>' in page.text  # the form shows the filter
    page = browser.get(f"/console/licenses?product={other['product_code']}")
    assert other["id"] in page.text and kept["id"] not in page.text


def test_the_list_filters_by_customer_and_by_device(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Acme"})
    order = vendor.order(customer_id=customer["id"])
    other = vendor.order()
    device_id = activate_device(vendor, other["ticket_code"])
    browser = staff_browser(app, vendor)
    [ordered], [activated] = _licenses_of(vendor, order), _licenses_of(vendor, other)
    by_customer = browser.get(f"/console/licenses?customer={customer['id']}").text
    assert ordered in by_customer and activated not in by_customer
    by_device = browser.get(f"/console/licenses?device={device_id}").text
    assert activated in by_device and ordered not in by_device


def test_the_next_page_keeps_the_filters(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    product = vendor.product()
    template = vendor.template(product=product)
    vendor.order([{"sku": template["sku"], "quantity": 3}])
    browser = staff_browser(app, vendor)
    first = browser.get(f"/console/licenses?state=available&product={product['code']}&limit=2")
    link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    query = parse_qs(urlsplit(link.replace("&amp;", "&")).query)
    assert query["state"] == ["available"] and query["product"] == [product["code"]]
    second = browser.get(link.replace("&amp;", "&"))
    assert second.status_code == 200 and second.text.count('href="/console/licenses/') == 1


def test_an_unknown_state_is_shown_next_to_its_filter(app: FastAPI, vendors: VendorFactory):
    browser = staff_browser(app, vendors.create())
    page = browser.get("/console/licenses?state=lost")
    assert page.status_code == 422
    problem = page.text.split('id="q-state-problem"')[1].split("</p>")[0]
    assert "VALIDATION_FAILED" in problem


def test_a_license_page_names_only_the_outcomes_of_its_actions(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = vendor.license()
    browser = staff_browser(app, vendor)
    page = browser.get(f"/console/licenses/{license_['id']}?done=<b>forged</b>")
    assert page.status_code == 200 and "forged" not in page.text
    page = browser.get(f"/console/licenses/{license_['id']}?done=suspended")
    assert "Done: the license is suspended." in page.text


def test_suspend_and_resume_from_the_detail_page_and_see_the_history(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = vendor.license()
    browser = staff_browser(app, vendor)
    detail = f"/console/licenses/{license_['id']}"
    answer = browser.submit(detail, f"{detail}/suspend", {})
    assert answer.status_code == 303 and _state(vendor, license_["id"]) == "suspended"
    page = browser.get(answer.headers["location"])
    assert "license.suspended" in page.text  # the history shows what happened
    browser.submit(detail, f"{detail}/resume", {})
    assert _state(vendor, license_["id"]) == "available"


def test_the_state_machines_refusal_is_shown_with_its_code(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    license_ = vendor.license()
    vendor.ok("POST", f"/licenses/{license_['id']}/actions/withdraw")
    browser = staff_browser(app, vendor)
    detail = f"/console/licenses/{license_['id']}"
    page = browser.get(detail)
    assert "not possible while the license is withdrawn" in page.text
    answer = browser.submit(detail, f"{detail}/resume", {})
    assert answer.status_code == 409
    assert "ILLEGAL_TRANSITION" in answer.text
    assert "The license&#39;s state does not allow this now." in answer.text


def test_extend_by_days_and_a_license_without_end_is_refused(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    limited = vendor.license({"validity": {"kind": "days_from_issue", "days": 30}})
    unlimited = vendor.license()
    browser = staff_browser(app, vendor)
    detail = f"/console/licenses/{limited['id']}"
    assert browser.submit(detail, f"{detail}/extend", {"days": "10"}).status_code == 303
    assert vendor.ok("GET", f"/licenses/{limited['id']}")["valid_until"] > limited["valid_until"]
    detail = f"/console/licenses/{unlimited['id']}"
    refused = browser.submit(detail, f"{detail}/extend", {"days": "10"})
    assert refused.status_code == 409 and "NOT_TIME_LIMITED" in refused.text
    wrong = browser.submit(detail, f"{detail}/extend", {"until": "next week"})
    problem = wrong.text.split('id="f-until-problem"')[1].split("</p>")[0]
    assert wrong.status_code == 422 and "VALIDATION_FAILED" in problem


def test_replace_shows_the_successor(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    license_ = vendor.license()
    browser = staff_browser(app, vendor)
    detail = f"/console/licenses/{license_['id']}"
    answer = browser.submit(detail, f"{detail}/replace", {"sku": ""})
    successor = answer.headers["location"].split("/")[-1].split("?")[0]
    assert successor != license_["id"] and _state(vendor, license_["id"]) == "replaced"
    detail = f"/console/licenses/{successor}"
    unknown = browser.submit(detail, f"{detail}/replace", {"sku": "NOPE"})
    assert unknown.status_code == 422
    problem = field_problem(unknown.text, "sku")
    assert "UNKNOWN_SKU" in problem and "There is no template with SKU NOPE." in problem
    assert 'name="sku" type="text" value="NOPE"' in unknown.text  # kept to correct it
    assert _state(vendor, successor) == "available"


def test_withdrawing_is_a_step_of_its_own_that_asks_to_confirm(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = vendor.license()
    browser = staff_browser(app, vendor)
    detail = f"/console/licenses/{license_['id']}"
    page = browser.get(detail).text
    assert f'href="{detail}/withdraw"' in page and f"{detail}/withdraw" not in post_forms(page)
    asked = browser.get(f"{detail}/withdraw")
    assert asked.status_code == 200 and "Withdraw this license?" in asked.text
    assert license_["id"] in asked.text and "final" in asked.text
    assert 'class="danger"' in asked.text and f'href="{detail}"' in asked.text  # a way back
    unticked = browser.submit(f"{detail}/withdraw", f"{detail}/withdraw", {})
    assert unticked.status_code == 422 and "Tick the box" in unticked.text
    assert _state(vendor, license_["id"]) == "available"
    done = browser.submit(f"{detail}/withdraw", f"{detail}/withdraw", {"understood": "yes"})
    assert done.status_code == 303 and _state(vendor, license_["id"]) == "withdrawn"


def test_a_read_only_member_sees_licenses_but_has_no_actions_and_is_refused(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    license_ = vendor.license()
    browser = staff_browser(app, vendor, "read-only")
    detail = f"/console/licenses/{license_['id']}"
    page = browser.get(detail)
    assert page.status_code == 200 and license_["id"] in page.text
    assert post_forms(page.text) == []
    for action in ("suspend", "withdraw", "extend", "replace"):
        answer = browser.submit(detail, f"{detail}/{action}", {"days": "1", "understood": "yes"})
        assert answer.status_code == 403 and "FORBIDDEN" in answer.text, action
    assert browser.get(f"{detail}/withdraw").status_code == 403
    assert _state(vendor, license_["id"]) == "available"


def test_another_vendors_license_is_not_found_and_not_changed(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    license_ = theirs.license()
    browser = staff_browser(app, mine)
    detail = f"/console/licenses/{license_['id']}"
    assert browser.get(detail).status_code == 404
    for action in ("suspend", "withdraw", "extend", "replace"):
        data = {"days": "1", "understood": "yes"}
        answer = browser.submit("/console/licenses", f"{detail}/{action}", data)
        assert answer.status_code == 404, action
    assert browser.get(f"{detail}/withdraw").status_code == 404
    listed = browser.get(f"/console/licenses?product={license_['product_code']}")
    assert license_["id"] not in listed.text
    assert _state(theirs, license_["id"]) == "available"


def test_without_a_login_the_console_sends_to_the_login_page(app: FastAPI, vendors: VendorFactory):
    from tests.integration.web.pages import Browser

    answer = Browser(app).get("/console/licenses")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/login"
