"""A vendor's shop settings and price mappings through the API: the signing secret is
written, never read back; mappings name SKUs that exist; bad input is a problem."""

from __future__ import annotations

from tests.factories import VendorFactory
from tests.support.shops import STRIPE_SECRET, connect

PROBLEM = "application/problem+json"


def test_connecting_a_shop_answers_where_it_sends_its_events_and_never_the_secret(
    vendors: VendorFactory,
):
    vendor = vendors.create()
    created = vendor.request("PUT", "/shops/stripe", json={"signing_secret": STRIPE_SECRET})
    assert created.status_code == 201, created.text
    shop = created.json()
    assert shop["events_url"].endswith(f"/api/v1/vendors/{vendor.slug}/shops/stripe/events")
    assert (shop["refund_action"], shop["cancel_action"], shop["enabled"]) == (
        "suspend",
        "none",
        True,
    )
    changed = vendor.request("PUT", "/shops/stripe", json={"refund_action": "withdraw"})
    assert changed.status_code == 200 and changed.json()["refund_action"] == "withdraw"
    shown = vendor.get("/shops/stripe").text
    assert STRIPE_SECRET not in shown and STRIPE_SECRET not in changed.text
    audit = vendor.get("/audit-events", params={"limit": 200}).text
    assert STRIPE_SECRET not in audit and "shop.connected" in audit


def test_a_shop_is_connected_only_with_its_secret_and_known_actions(vendors: VendorFactory):
    vendor = vendors.create()
    cases = [
        ("/shops/stripe", {"refund_action": "withdraw"}, 422, "VALIDATION_FAILED"),
        ("/shops/stripe", {"signing_secret": "short"}, 422, "VALIDATION_FAILED"),
        (
            "/shops/stripe",
            {"signing_secret": STRIPE_SECRET, "refund_action": "explode"},
            422,
            "VALIDATION_FAILED",
        ),
        ("/shops/shopify", {"signing_secret": STRIPE_SECRET}, 404, "SHOP_UNKNOWN"),
    ]
    for path, body, status, code in cases:
        answer = vendor.request("PUT", path, json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["code"] == code
    missing = vendor.get("/shops/paddle")
    assert (missing.status_code, missing.json()["code"]) == (404, "SHOP_NOT_CONNECTED")


def test_mappings_are_created_listed_changed_and_removed(vendors: VendorFactory):
    vendor = vendors.create()
    sku_a, sku_b = vendor.template()["sku"], vendor.template()["sku"]
    body = {"provider": "stripe", "provider_ref": "price_123", "sku": sku_a}
    mapping = vendor.ok("POST", "/shop-mappings", json=body)
    assert (mapping["provider_ref"], mapping["sku"]) == ("price_123", sku_a)
    again = vendor.post("/shop-mappings", json=body)
    assert (again.status_code, again.json()["code"]) == (409, "ALREADY_EXISTS")
    paddle = {"provider": "paddle", "provider_ref": "price_123", "sku": sku_b}
    assert vendor.post("/shop-mappings", json=paddle).status_code == 201  # another shop
    listed = vendor.ok("GET", "/shop-mappings", params={"provider": "stripe"})["items"]
    assert [m["id"] for m in listed] == [mapping["id"]]
    changed = vendor.ok("PATCH", f"/shop-mappings/{mapping['id']}", json={"sku": sku_b})
    assert changed["sku"] == sku_b
    assert vendor.request("DELETE", f"/shop-mappings/{mapping['id']}").status_code == 204
    assert vendor.get(f"/shop-mappings/{mapping['id']}").status_code == 404


def test_a_mapping_to_an_unknown_sku_is_refused_with_the_field_named(vendors: VendorFactory):
    vendor = vendors.create()
    answer = vendor.post(
        "/shop-mappings", json={"provider": "stripe", "provider_ref": "price_1", "sku": "NOPE"}
    )
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    assert (answer.json()["code"], answer.json()["field"]) == ("UNKNOWN_SKU", "sku")
    mapping = vendor.ok(
        "POST",
        "/shop-mappings",
        json={"provider": "stripe", "provider_ref": "price_1", "sku": vendor.template()["sku"]},
    )
    patched = vendor.request("PATCH", f"/shop-mappings/{mapping['id']}", json={"sku": "NOPE"})
    assert patched.json()["code"] == "UNKNOWN_SKU"


def test_a_sales_member_reads_shops_but_only_an_admin_connects_one(vendors: VendorFactory):
    vendor = vendors.create()
    connect(vendor)
    sales = vendor.user_token("sales")
    assert vendor.request("GET", "/shops/stripe", token=sales).status_code == 200
    refused = vendor.request("PUT", "/shops/stripe", token=sales, json={"enabled": False})
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
