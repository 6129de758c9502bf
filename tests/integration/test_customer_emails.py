"""A customer's e-mail address is checked by one rule wherever a customer is written:
created, changed, put by external id, named in a batch of orders. What is no address
is refused with EMAIL_INVALID (problem+json) and nothing is stored."""

from __future__ import annotations

import pytest

from tests.factories import VendorFactory, VendorHandle

PROBLEM = "application/problem+json"
NOT_ADDRESSES = ["notanemail", "two@example.com, three@example.com", "a b@example.com", "x@y"]


def assert_refused(answer, vendor: VendorHandle) -> None:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM)
    assert (answer.json()["code"], answer.json()["field"]) == ("EMAIL_INVALID", "email")


@pytest.mark.parametrize("address", NOT_ADDRESSES)
def test_a_customer_is_not_created_with_what_is_no_address(vendors: VendorFactory, address):
    vendor = vendors.create()
    assert_refused(vendor.post("/customers", json={"name": "Z", "email": address}), vendor)
    assert vendor.ok("GET", "/customers")["items"] == []


def test_a_customers_address_is_kept_without_surrounding_spaces(vendors: VendorFactory):
    vendor = vendors.create()
    created = vendor.ok("POST", "/customers", json={"name": "Z", "email": " it@z.example "})
    assert created["email"] == "it@z.example"


def test_a_customers_address_is_not_changed_to_what_is_no_address(vendors: VendorFactory):
    vendor = vendors.create()
    customer = vendor.ok("POST", "/customers", json={"name": "Z", "email": "it@z.example"})
    path = f"/customers/{customer['id']}"
    assert_refused(vendor.request("PATCH", path, json={"email": "notanemail"}), vendor)
    assert vendor.ok("GET", path)["email"] == "it@z.example"
    assert vendor.ok("PATCH", path, json={"email": None})["email"] is None


def test_a_customer_put_by_external_id_is_refused_what_is_no_address(vendors: VendorFactory):
    vendor = vendors.create()
    path = "/customers/by-external-id/KD-1"
    assert_refused(vendor.request("PUT", path, json={"name": "Z", "email": "notanemail"}), vendor)
    vendor.ok("PUT", path, json={"name": "Z", "email": "it@z.example"})
    assert_refused(vendor.request("PUT", path, json={"name": "Z", "email": "nope"}), vendor)
    assert vendor.ok("GET", "/customers")["items"][0]["email"] == "it@z.example"


def test_an_order_of_a_batch_naming_a_customer_with_no_address_fails(vendors: VendorFactory):
    vendor = vendors.create()
    sku = vendor.template()["sku"]
    customer = {"external_id": "KD-2", "name": "Z", "email": "notanemail"}
    order = {"external_order_id": "SO-1", "lines": [{"sku": sku}], "customer": customer}
    answer = vendor.ok("POST", "/orders/bulk", json={"orders": [order]})
    (result,) = answer["results"]
    assert result["status"] == "failed"
    assert (result["problem"]["code"], result["problem"]["field"]) == ("EMAIL_INVALID", "email")
    assert vendor.ok("GET", "/customers")["items"] == []
