"""Answers that carry a secret are never stored by a cache, and no answer's content
type is guessed by a browser (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from licentia.domain.actors import operator
from licentia.server.api import create_app
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


# -- Strict-Transport-Security (HSTS) ------------------------------------------------

HSTS = "max-age=31536000"
# The probe, a page of the web fronts, their static files, the API (refused: no key).
FRONTS = ["/healthz", "/console/login", "/static/web/site.css", "/api/v1/products"]


def _client_of(settings, database, master, base_url: str) -> TestClient:
    return TestClient(create_app(settings, database=database, master=master), base_url=base_url)


@pytest.mark.parametrize("path", FRONTS)
def test_an_answer_over_https_tells_browsers_to_keep_to_https(settings, database, master, path):
    with _client_of(settings, database, master, "https://licentia.test") as client:
        answer = client.get(path)
    assert answer.status_code in (200, 401), answer.text
    assert answer.headers["strict-transport-security"] == HSTS


def test_an_answer_over_plain_http_says_nothing_of_https(client):
    for path in FRONTS:
        assert "strict-transport-security" not in client.get(path).headers


def test_an_https_public_address_means_hsts_even_where_the_proxy_said_nothing(
    settings, database, master
):
    behind = settings.model_copy(update={"public_url": "https://licenses.example.com"})
    with _client_of(behind, database, master, "http://licentia.test") as client:
        assert client.get("/console/login").headers["strict-transport-security"] == HSTS


def test_hsts_can_be_turned_off_or_shortened(settings, database, master):
    off = settings.model_copy(update={"hsts_seconds": 0})
    with _client_of(off, database, master, "https://licentia.test") as client:
        assert "strict-transport-security" not in client.get("/healthz").headers
    short = settings.model_copy(update={"hsts_seconds": 600})
    with _client_of(short, database, master, "https://licentia.test") as client:
        assert client.get("/healthz").headers["strict-transport-security"] == "max-age=600"
