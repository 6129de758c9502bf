"""Answers that carry a secret are never stored by a cache, and no answer's content
type is guessed by a browser (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from httpx import Response

from licentia.domain.actors import operator
from licentia.server.tenancy import services as tenancy
from tests.factories import PASSWORD, VendorHandle
from tests.integration.device_messages import BareDevice

Call = Callable[[VendorHandle], Response]


def _session(vendor: VendorHandle) -> Response:
    email = f"{vendor.unique('user')}@example.test"
    with vendor.database.transaction() as session:
        tenancy.create_user(
            session, operator(vendor.id), vendor.id, email=email, password=PASSWORD, role="admin"
        )
    return vendor.client.post(
        "/api/v1/sessions", json={"vendor": vendor.slug, "email": email, "password": PASSWORD}
    )


def _ticket_code(vendor: VendorHandle) -> Response:
    return vendor.post(f"/tickets/{vendor.order()['ticket_id']}/code")


def _redeem(vendor: VendorHandle) -> Response:
    order = vendor.order([{"sku": vendor.template({"delivery": "cloud"})["sku"], "quantity": 1}])
    return vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/redeem", json={"ticket": order["ticket_code"]}
    )


def _activation(vendor: VendorHandle) -> Response:
    device = BareDevice(vendor.slug)
    return vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=device.request("activate", vendor.order()["ticket_code"]),
        headers={"Content-Type": "application/jose"},
    )


SECRETS: dict[str, tuple[Call, int]] = {
    "a new API key": (
        lambda v: v.post("/api-keys", json={"name": "k", "scopes": ["audit:read"]}),
        201,
    ),
    "a session token": (_session, 201),
    "an order and its ticket code": (lambda v: v.post("/orders", json=_order_body(v)), 201),
    "a ticket code shown again": (_ticket_code, 200),
    "a cloud credential": (_redeem, 201),
    "a device activation (hot call)": (_activation, 200),
    "a license (hot call)": (lambda v: v.get(f"/licenses/{v.license()['id']}"), 200),
    "a problem": (lambda v: v.get("/products", token="lic_nope_nope"), 401),
}


def _order_body(vendor: VendorHandle) -> dict[str, object]:
    sku = vendor.template()["sku"]
    return {"external_order_id": vendor.unique("O"), "lines": [{"sku": sku, "quantity": 1}]}


@pytest.mark.parametrize("name", SECRETS)
def test_answers_of_the_api_are_not_stored_and_not_sniffed(vendors, name):
    call, status = SECRETS[name]
    answer = call(vendors.create())
    assert answer.status_code == status, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/healthz", "/openapi.json", "/docs"])
def test_every_other_answer_is_not_sniffed_either(client, path):
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_public_key_set_may_be_cached(vendors):
    vendor = vendors.create()
    answer = vendor.client.get(f"/api/v1/vendors/{vendor.slug}/jwks.json")
    assert answer.status_code == 200
    assert "no-store" not in answer.headers.get("cache-control", "")
    assert answer.headers["x-content-type-options"] == "nosniff"
