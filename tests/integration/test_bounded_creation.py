"""What one vendor may create is bounded, so that one request cannot grow the database
or every later list without limit (docs/security.md, "Bounded creation"): features
per product, custom data per template, licenses per order and per order line. Each
refusal names its code and leaves what was there untouched and usable."""

from __future__ import annotations

from licentia.domain.templates import MAX_PROTECTED_BYTES
from licentia.server.catalog.services import MAX_FEATURES
from tests.integration.test_errors import assert_problem


def _features(count: int, prefix: str = "f") -> list[dict[str, str]]:
    return [{"code": f"{prefix}{n}"} for n in range(count)]


def test_a_product_has_at_most_256_features(vendors):
    vendor = vendors.create()
    full = vendor.ok(
        "POST", "/products", json={"code": "FULL", "name": "Full", "features": _features(256)}
    )
    assert len(full["features"]) == MAX_FEATURES == 256
    one_more = vendor.request(
        "PATCH", f"/products/{full['id']}", json={"add_features": _features(1, "extra")}
    )
    problem = assert_problem(one_more, 422, "TOO_MANY_FEATURES")
    assert (problem["field"], problem["limit"]) == ("add_features", MAX_FEATURES)
    too_many = vendor.post(
        "/products", json={"code": "MORE", "name": "More", "features": _features(257)}
    )
    assert assert_problem(too_many, 422, "VALIDATION_FAILED")["field"] == "features"
    # The full product is untouched and still serves its templates.
    assert len(vendor.ok("GET", f"/products/{full['id']}")["features"]) == 256
    template = vendor.template(product=full, features=["f0", "f255"])
    assert template["features"] == ["f0", "f255"]


def _protected(size: int) -> dict[str, str]:
    """Protected custom data whose compact JSON is ``size`` bytes long."""
    overhead = len('{"blob":""}')
    return {"blob": "x" * (size - overhead)}


def test_protected_custom_data_is_at_most_16_kib_of_json(vendors):
    vendor = vendors.create()
    largest = {"custom_data": {"protected": _protected(MAX_PROTECTED_BYTES)}}
    template = vendor.template(largest)
    assert len(template["options"]["custom_data"]["protected"]["blob"]) > 16_000
    too_large = {"custom_data": {"protected": _protected(MAX_PROTECTED_BYTES + 1)}}
    refused = vendor.request("PATCH", f"/templates/{template['id']}", json={"options": too_large})
    problem = assert_problem(refused, 422, "CUSTOM_DATA_TOO_LARGE")
    assert problem["field"] == "options.custom_data.protected"
    # The template keeps its options and still issues licenses.
    order = vendor.order([{"sku": template["sku"], "quantity": 2}])
    assert len(vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]) == 2
