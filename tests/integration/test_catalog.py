"""Products, features and license templates through the API."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from licentia.server.catalog.models import Template
from licentia.server.catalog.services import template_secret
from tests.factories import VendorFactory, VendorHandle

SECRET = "s3cret-activation-salt-9f2c"


def refused(response: Any, field: str, code: str = "VALIDATION_FAILED") -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (response.json()["code"], response.json()["field"]) == (code, field)


# --- products ---------------------------------------------------------------------------


def test_a_product_is_created_with_its_features_and_read_back(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    created = vendor.ok(
        "POST",
        "/products",
        json={"code": "CAD", "name": "CAD Pro", "features": [{"code": "edit", "name": "Edit"}]},
    )
    assert created["features"] == [{"code": "edit", "name": "Edit"}]
    assert vendor.ok("GET", f"/products/{created['id']}") == created


def test_a_product_is_renamed_and_gains_features_but_keeps_its_code(
    vendors: VendorFactory,
) -> None:
    vendor = vendors.create()
    product = vendor.product(features=("edit",))
    changed = vendor.ok(
        "PATCH",
        f"/products/{product['id']}",
        json={"name": "Renamed", "add_features": [{"code": "export"}]},
    )
    assert (changed["code"], changed["name"]) == (product["code"], "Renamed")
    assert [f["code"] for f in changed["features"]] == ["edit", "export"]


def test_adding_a_feature_twice_names_the_offending_entry(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    product = vendor.product(features=("edit",))
    response = vendor.request(
        "PATCH",
        f"/products/{product['id']}",
        json={"add_features": [{"code": "new"}, {"code": "edit"}]},
    )
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["field"]) == (
        "ALREADY_EXISTS",
        "add_features[1].code",
    )
    features = vendor.ok("GET", f"/products/{product['id']}")["features"]
    assert [f["code"] for f in features] == ["edit"]


def test_a_product_code_is_unique_per_vendor(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    vendor.ok("POST", "/products", json={"code": "ONE", "name": "One"})
    response = vendor.post("/products", json={"code": "ONE", "name": "Again"})
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["field"]) == ("ALREADY_EXISTS", "code")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "has space", "name": "P"}, "code"),
        ({"code": "-leading-dash", "name": "P"}, "code"),
        # Python's ``$`` also matches before a final newline: this code was taken.
        ({"code": "APP\n", "name": "P"}, "code"),
        (
            {"code": "P", "name": "P", "features": [{"code": "ok"}, {"code": "bad/code"}]},
            "features[1].code",
        ),
    ],
)
def test_a_malformed_code_is_refused_naming_it(
    vendors: VendorFactory, body: dict[str, Any], field: str
) -> None:
    vendor = vendors.create()
    refused(vendor.post("/products", json=body), field)
    assert vendor.ok("GET", "/products")["items"] == []


# --- templates: validation ---------------------------------------------------------------


@pytest.fixture
def vendor(vendors: VendorFactory) -> VendorHandle:
    return vendors.create()


def post_template(vendor: VendorHandle, options: dict[str, Any], **body: Any) -> Any:
    product = vendor.product(features=("edit", "export"))
    payload = {
        "sku": vendor.unique("SKU"),
        "name": "T",
        "product_id": product["id"],
        "features": ["edit"],
        "options": options,
        **body,
    }
    return vendor.post("/templates", json=payload)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"delivery": "seat_pool"}, "options.seats"),
        ({"delivery": "seat_pool", "seats": 0}, "options.seats"),
        ({"lease_days": -1}, "options.lease_days"),
        ({"lease_days": 0}, "options.lease_days"),
        ({"maintenance_days": -30}, "options.maintenance_days"),
        ({"validity": {"kind": "days_from_issue", "days": 0}}, "options.validity.days"),
        ({"validity": {"kind": "fixed_end"}}, "options.validity.end_date"),
        (
            {"fingerprint_tolerance": {"preset": None, "k": 4, "n": 3}},
            "options.fingerprint_tolerance.k",
        ),
        ({"lease_days": 7, "refresh_days": 8}, "options.refresh_days"),
        ({"max_borrow_days": 3}, "options.max_borrow_days"),
        ({"colour": "blue"}, "options.colour"),
        ({"custom_data": {"hidden": "x"}}, "options.custom_data.hidden"),
        (
            {"transfer_limit": {"returns": 1, "period_days": -1}},
            "options.transfer_limit.period_days",
        ),
        ({"churn_limit": {"count": 0, "days": 30}}, "options.churn_limit.count"),
        ({"churn_limit": {"count": 3}}, "options.churn_limit.days"),
        ({"churn_limit": {"count": 3, "days": 30}, "delivery": "cloud"}, "options.churn_limit"),
    ],
)
def test_a_broken_option_rule_is_refused_naming_the_option(
    vendor: VendorHandle, options: dict[str, Any], field: str
) -> None:
    refused(post_template(vendor, options), field)
    assert vendor.ok("GET", "/templates")["items"] == []


def test_a_fixed_end_date_already_past_is_refused(vendor: VendorHandle) -> None:
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    ended = {"validity": {"kind": "fixed_end", "end_date": yesterday}}
    refused(post_template(vendor, ended), "options.validity.end_date", "END_DATE_PASSED")
    assert vendor.ok("GET", "/templates")["items"] == []
    template = post_template(vendor, {}).json()
    answer = vendor.request("PATCH", f"/templates/{template['id']}", json={"options": ended})
    refused(answer, "options.validity.end_date", "END_DATE_PASSED")


def test_a_fixed_end_date_today_is_still_accepted(vendor: VendorHandle) -> None:
    """Valid through the whole end date in UTC: today's date still issues usable licenses."""
    today = datetime.now(UTC).date().isoformat()
    created = post_template(vendor, {"validity": {"kind": "fixed_end", "end_date": today}})
    assert created.status_code == 201, created.text


def test_an_unknown_feature_is_refused_naming_its_position(vendor: VendorHandle) -> None:
    refused(post_template(vendor, {}, features=["edit", "fly"]), "features[1]", "UNKNOWN_FEATURE")


def test_a_template_of_an_unknown_product_is_not_found(vendor: VendorHandle) -> None:
    body = {"sku": "S", "name": "T", "product_id": "no-such-product", "options": {}}
    response = vendor.post("/templates", json=body)
    assert (response.status_code, response.json()["code"]) == (404, "NOT_FOUND")


def test_a_sku_is_unique_per_vendor(vendor: VendorHandle) -> None:
    assert post_template(vendor, {}, sku="SKU-X").status_code == 201
    response = post_template(vendor, {}, sku="SKU-X")
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["field"]) == ("ALREADY_EXISTS", "sku")


def test_a_template_carrying_every_option_is_accepted_and_shown_back(vendor: VendorHandle) -> None:
    options = {
        "validity": {"kind": "days_from_activation", "days": 365},
        "maintenance_days": 365,
        "delivery": "seat_pool",
        "seats": 10,
        "seat_counting": "per_device",
        "units": 1000,
        "lease_days": 14,
        "refresh_days": 3,
        "max_borrow_days": 7,
        "fingerprint_tolerance": {"preset": None, "k": 3, "n": 5},
        "vm_policy": "deny",
        "transfer_limit": {"returns": 2, "period_days": 90},
        "custom_data": {"public": "hello", "protected": {"tier": "gold"}},
    }
    response = post_template(vendor, options)
    assert response.status_code == 201, response.text
    shown = response.json()["options"]
    assert {key: shown[key] for key in options} == options | {
        "validity": {"kind": "days_from_activation", "days": 365, "end_date": None},
        "custom_data": {"public": "hello", "protected": {"tier": "gold"}, "secret": None},
    }


def test_an_update_with_a_broken_option_changes_nothing(vendor: VendorHandle) -> None:
    template = vendor.template({"lease_days": 30})
    response = vendor.request(
        "PATCH", f"/templates/{template['id']}", json={"name": "New", "options": {"seats": -1}}
    )
    refused(response, "options.seats")
    assert vendor.ok("GET", f"/templates/{template['id']}") == template


def test_an_update_with_an_unknown_feature_is_refused(vendor: VendorHandle) -> None:
    template = vendor.template()
    response = vendor.request(
        "PATCH", f"/templates/{template['id']}", json={"features": ["edit", "teleport"]}
    )
    refused(response, "features[1]", "UNKNOWN_FEATURE")


# --- templates: secret custom data --------------------------------------------------------


def secret_template(vendor: VendorHandle) -> dict[str, Any]:
    return vendor.template({"custom_data": {"public": "visible", "secret": SECRET}})


def test_secret_custom_data_is_never_returned_only_flagged(vendor: VendorHandle) -> None:
    template = secret_template(vendor)
    assert template["has_secret"] is True
    assert template["options"]["custom_data"] == {
        "public": "visible",
        "protected": None,
        "secret": None,
    }
    shown = [
        vendor.get(f"/templates/{template['id']}").text,
        vendor.get("/templates").text,
        vendor.get("/audit-events").text,
    ]
    assert not [text for text in shown if SECRET in text]


def test_secret_custom_data_is_stored_encrypted_and_still_readable_by_the_server(
    vendor: VendorHandle,
) -> None:
    template = secret_template(vendor)
    with vendor.database.read() as session:
        row = session.scalars(select(Template).where(Template.id == template["id"])).one()
        stored = json.dumps(row.options) + repr(row.secret_encrypted)
        assert row.secret_encrypted is not None
        assert SECRET.encode() not in row.secret_encrypted
        assert base64.b64encode(SECRET.encode()) not in row.secret_encrypted
        assert SECRET not in stored
        assert template_secret(row, vendor.master) == SECRET


def test_licenses_and_their_documents_do_not_carry_the_secret_in_clear(
    vendor: VendorHandle,
) -> None:
    template = secret_template(vendor)
    order = vendor.order([{"sku": template["sku"]}])
    (license_id,) = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    document = vendor.get(f"/licenses/{license_id}/document").text
    payload = document.split(".")[1]
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert SECRET not in vendor.get(f"/licenses/{license_id}").text
    assert SECRET not in claims
    assert json.loads(claims)["public_data"] == "visible"


# --- templates: changes do not reach issued licenses ---------------------------------------


def test_changing_a_template_leaves_already_issued_licenses_as_they_were(
    vendor: VendorHandle,
) -> None:
    product = vendor.product(features=("edit", "export"))
    template = vendor.template({"lease_days": 30}, product=product, features=["edit"])
    old = vendor.order([{"sku": template["sku"]}])
    (old_id,) = vendor.ok("GET", f"/tickets/{old['ticket_id']}")["license_ids"]
    before = vendor.ok("GET", f"/licenses/{old_id}")

    vendor.ok(
        "PATCH",
        f"/templates/{template['id']}",
        json={"features": ["edit", "export"], "options": {"lease_days": 60, "vm_policy": "deny"}},
    )

    assert vendor.ok("GET", f"/licenses/{old_id}") == before
    new = vendor.order([{"sku": template["sku"]}])
    (new_id,) = vendor.ok("GET", f"/tickets/{new['ticket_id']}")["license_ids"]
    fresh = vendor.ok("GET", f"/licenses/{new_id}")
    assert (fresh["options"]["lease_days"], fresh["options"]["vm_policy"]) == (60, "deny")
    assert fresh["features"] == ["edit", "export"]
    assert (before["options"]["lease_days"], before["features"]) == (30, ["edit"])


def test_an_update_is_audited_with_the_before_and_after(vendor: VendorHandle) -> None:
    template = vendor.template({"lease_days": 30})
    vendor.ok("PATCH", f"/templates/{template['id']}", json={"options": {"lease_days": 45}})
    (event,) = vendor.ok(
        "GET", "/audit-events", params={"action": "template.updated", "object_id": template["id"]}
    )["items"]
    assert event["before"]["options"]["lease_days"] == 30
    assert event["after"]["options"]["lease_days"] == 45


def template_updates(vendor: VendorHandle, template_id: str) -> int:
    params = {"action": "template.updated", "object_id": template_id}
    return len(vendor.ok("GET", "/audit-events", params=params)["items"])


def test_saving_a_template_unchanged_writes_no_audit_event(vendor: VendorHandle) -> None:
    template = vendor.template({"lease_days": 30})
    unchanged = {k: template[k] for k in ("name", "features", "options")}
    saved = vendor.ok("PATCH", f"/templates/{template['id']}", json=unchanged)
    assert template_updates(vendor, template["id"]) == 0
    assert saved["updated_at"] == template["updated_at"]
    vendor.ok("PATCH", f"/templates/{template['id']}", json={"name": "Renamed"})
    assert template_updates(vendor, template["id"]) == 1


def test_saving_the_same_secret_again_is_no_change_and_a_new_one_is(vendor: VendorHandle) -> None:
    template = secret_template(vendor)
    options = {**template["options"], "custom_data": {"public": "visible", "secret": SECRET}}
    vendor.ok("PATCH", f"/templates/{template['id']}", json={"options": options})
    assert template_updates(vendor, template["id"]) == 0
    options["custom_data"]["secret"] = "another secret"
    vendor.ok("PATCH", f"/templates/{template['id']}", json={"options": options})
    assert template_updates(vendor, template["id"]) == 1
