"""Console pages for products and templates: what staff see and do, the errors next
to their fields, and what another vendor's staff or a read-only role cannot do."""

from __future__ import annotations

import re

from fastapi import FastAPI

from tests.factories import VendorFactory
from tests.integration.web.pages import Browser
from tests.integration.web.staff import console, created_id, field_problem


def test_staff_create_a_product_with_features_and_add_one_later(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    browser = console(app, vendor)
    answer = browser.submit(
        "/console/products",
        "/console/products",
        {"code": "CAD", "name": "CAD Studio", "features": "base\npro Professional"},
    )
    assert answer.status_code == 303
    product_id = created_id(answer, "products")
    browser.submit(
        f"/console/products/{product_id}",
        f"/console/products/{product_id}/features",
        {"code": "render", "feature_name": "Rendering"},
    )
    product = vendor.ok("GET", f"/products/{product_id}")
    assert [f["code"] for f in product["features"]] == ["base", "pro", "render"]
    assert product["features"][1]["name"] == "Professional"
    page = browser.get("/console/products").text
    assert "CAD Studio" in page and "base, pro, render" in page


def test_a_taken_product_code_is_shown_next_to_the_code_field(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    taken = vendor.product()["code"]
    answer = console(app, vendor).submit(
        "/console/products", "/console/products", {"code": taken, "name": "Again"}
    )
    assert answer.status_code == 422
    problem = re.search(r'id="f-code-problem"[^>]*>(.*?)</p>', answer.text, re.S)
    assert problem and "ALREADY_EXISTS" in problem.group(1)


def test_a_duplicate_new_feature_is_shown_next_to_its_field(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    product = vendor.product(("edit",))
    page = f"/console/products/{product['id']}"
    answer = console(app, vendor).submit(page, f"{page}/features", {"code": "edit"})
    assert answer.status_code == 422
    assert re.search(r'id="f-code-problem"[^>]*><span class="code">ALREADY_EXISTS', answer.text)


def template_form(product_id: str, sku: str, **options: str) -> dict[str, str]:
    form = {
        "sku": sku,
        "name": "Studio, one year",
        "product_id": product_id,
        "options.validity.kind": "days_from_issue",
        "options.validity.days": "365",
        "options.delivery": "device",
        "options.seat_counting": "per_user",
        "options.lease_days": "30",
        "options.refresh_days": "7",
        "options.fingerprint_tolerance.preset": "medium",
        "options.vm_policy": "allow",
        "options.max_devices": "3",
        "options.seat_lease_seconds": "300",
        "options.access_token_seconds": "300",
    }
    form.update({f"options.{name.replace('__', '.')}": value for name, value in options.items()})
    return form


def test_a_template_with_every_kind_of_option_is_created_as_the_api_would(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    product = vendor.product(("base", "pro"))
    browser = console(app, vendor)
    form = template_form(
        product["id"],
        "STUDIO-1Y",
        maintenance_days="365",
        vm_policy="deny",
        fingerprint_tolerance__preset="custom",
        fingerprint_tolerance__k="3",
        fingerprint_tolerance__n="5",
        transfer_limit__returns="2",
        transfer_limit__period_days="365",
        churn_limit__count="6",
        churn_limit__days="90",
        custom_data__public="Thank you",
        custom_data__protected='{"tier": "gold"}',
        custom_data__secret="s3cret",
    )
    answer = browser.client.post(
        "/console/templates/new",
        data={"csrf_token": browser.token("/console/templates/new"), **form, "features": ["pro"]},
    )
    assert answer.status_code == 303, answer.text
    template = vendor.ok("GET", f"/templates/{created_id(answer, 'templates')}")
    options = template["options"]
    assert template["features"] == ["pro"] and template["has_secret"]
    assert options["validity"] == {"kind": "days_from_issue", "days": 365, "end_date": None}
    assert options["fingerprint_tolerance"] == {"preset": None, "k": 3, "n": 5}
    assert options["transfer_limit"] == {"returns": 2, "period_days": 365}
    assert options["churn_limit"] == {"count": 6, "days": 90}
    assert options["vm_policy"] == "deny" and options["maintenance_days"] == 365
    assert options["custom_data"]["protected"] == {"tier": "gold"}
    edit = browser.get(f"/console/templates/{template['id']}").text
    assert 'value="custom" selected' in edit and "A secret is set" in edit


def test_a_broken_option_rule_is_shown_next_to_the_option_it_names(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    product = vendor.product()
    browser = console(app, vendor)
    cases = {
        "options.refresh_days": {"refresh_days": "40"},  # longer than the lease
        "options.seats": {"delivery": "seat_pool"},  # a pool without seats
        "options.validity.end_date": {"validity__kind": "fixed_end", "validity__days": ""},
        "options.lease_days": {"lease_days": "thirty"},
        "options.custom_data.protected": {"custom_data__protected": "[1, 2"},
        "options.max_borrow_days": {"max_borrow_days": "5"},  # only for seat pools
        "options.churn_limit.count": {"churn_limit__count": "0", "churn_limit__days": "30"},
        "options.churn_limit.days": {"churn_limit__count": "3"},  # a count without a period
    }
    for field, options in cases.items():
        form = template_form(product["id"], vendor.unique("SKU"), **options)
        answer = browser.submit("/console/templates/new", "/console/templates/new", form)
        assert answer.status_code == 422, field
        assert re.search(r'class="code">[A-Z_]+</span>', field_problem(answer.text, field)), field
        assert 'aria-invalid="true"' in answer.text
    assert vendor.ok("GET", "/templates")["items"] == []


def test_editing_a_template_changes_its_options(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    template = vendor.template({"validity": {"kind": "perpetual"}})
    page = f"/console/templates/{template['id']}"
    browser = console(app, vendor)
    form = template_form(template["product_id"], template["sku"], lease_days="60")
    form["name"] = "Renamed"
    answer = browser.client.post(
        page, data={"csrf_token": browser.token(page), **form, "features": template["features"]}
    )
    assert answer.status_code == 303
    changed = vendor.ok("GET", f"/templates/{template['id']}")
    assert changed["name"] == "Renamed" and changed["options"]["lease_days"] == 60


def test_another_vendors_product_or_template_is_not_found(app: FastAPI, vendors: VendorFactory):
    mine, theirs = vendors.create(), vendors.create()
    template = theirs.template()
    browser = console(app, mine)
    for path in (
        f"/console/products/{template['product_id']}",
        f"/console/templates/{template['id']}",
    ):
        answer = browser.get(path)
        assert answer.status_code == 404 and "NOT_FOUND" in answer.text
    answer = browser.submit(
        "/console/products",
        f"/console/products/{template['product_id']}/features",
        {"code": "stolen"},
    )
    assert answer.status_code == 404
    assert "stolen" not in str(theirs.ok("GET", f"/products/{template['product_id']}"))


def test_a_read_only_member_sees_the_catalog_but_cannot_change_it(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    template = vendor.template()
    browser = console(app, vendor, "read-only")
    products = browser.get("/console/products")
    assert products.status_code == 200 and "New product" not in products.text
    edit = browser.get(f"/console/templates/{template['id']}")
    assert edit.status_code == 200 and "Save template" not in edit.text
    answer = browser.submit("/console/products", "/console/products", {"code": "X", "name": "X"})
    assert answer.status_code == 403 and "FORBIDDEN" in answer.text
    assert browser.get("/console/templates/new").status_code == 403


def test_the_console_asks_for_a_login_first(app: FastAPI):
    for path in ("/console/products", "/console/templates", "/console/templates/new"):
        answer = Browser(app).get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/login"


def test_a_product_page_lists_its_templates(app: FastAPI, vendors: VendorFactory):
    vendor = vendors.create()
    template = vendor.template()
    answer = console(app, vendor).get(f"/console/products/{template['product_id']}")
    assert answer.status_code == 200
    assert f'href="/console/templates/{template["id"]}"' in answer.text
    assert template["sku"] in answer.text


def test_every_problem_of_the_template_form_is_named_in_one_submit(
    app: FastAPI, vendors: VendorFactory
):
    vendor = vendors.create()
    product = vendor.product()
    browser = console(app, vendor)
    form = template_form(
        product["id"],
        vendor.unique("SKU"),
        delivery="seat_pool",  # without seats
        validity__kind="fixed_end",
        validity__days="",
        validity__end_date="2020-01-31",  # over
        max_devices="three",
    )
    answer = browser.submit("/console/templates/new", "/console/templates/new", form)
    assert answer.status_code == 422
    assert "VALIDATION_FAILED" in field_problem(answer.text, "options.max_devices")
    assert "END_DATE_PASSED" in field_problem(answer.text, "options.validity.end_date")
    # the model's rule, broken by the fields that read, in the same submit
    assert "VALIDATION_FAILED" in field_problem(answer.text, "options.seats")
    form["options.max_devices"] = "3"
    again = browser.submit("/console/templates/new", "/console/templates/new", form)
    assert "VALIDATION_FAILED" in field_problem(again.text, "options.seats")
    assert "END_DATE_PASSED" in field_problem(again.text, "options.validity.end_date")
    assert vendor.ok("GET", "/templates")["items"] == []
