"""No data crosses vendors: vendor B using vendor A's ids gets 404, never A's data.

The cross-tenant matrix is derived from the app's routes: every endpoint whose path
names an object is called by vendor B with vendor A's object, so an endpoint added
later is covered without touching this file (unless it needs a request body).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response

from licentia.domain.actors import operator
from licentia.domain.scopes import Role
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.tenancy import services as tenancy
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.device_messages import BareDevice
from tests.integration.objects import one_of_each

API = "/api/v1"
PROBLEM = "application/problem+json"

# Path parameters that name one object of the caller's vendor.
OBJECT_PARAMS = {
    "product_id",
    "template_id",
    "customer_id",
    "order_id",
    "ticket_id",
    "license_id",
    "device_id",
    "kid",
    "key_id",
    "container_id",
    "lease_id",
    "endpoint_id",
    "delivery_id",
    "customer_user_id",
    "mapping_id",
    "shop_event_id",
}
# Path parameters that are not objects: the public vendor address, action verbs, a
# shop's name, and a customer's external id, which names (or makes) one of the caller's
# own customers (test_upserting_another_vendors_external_id_makes_a_customer_of_ones_own).
OTHER_PARAMS = {"slug", "action", "provider", "external_id"}
# The device protocol is addressed by vendor slug and authenticated by the device, not
# by a vendor's credential; its own tests keep devices apart.
DEVICE_PROTOCOL = f"{API}/vendors/{{slug}}/"
ACTIONS = {
    f"{API}/licenses/{{license_id}}/actions/{{action}}": ("suspend", "resume", "withdraw"),
    f"{API}/devices/{{device_id}}/actions/{{action}}": ("deactivate", "blacklist", "clear-flags"),
    f"{API}/licenses/{{license_id}}/units/{{action}}": ("top-up", "reset"),
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", f"{API}/products/{{product_id}}"): {"name": "taken over", "add_features": []},
    ("PATCH", f"{API}/templates/{{template_id}}"): {"name": "taken over"},
    ("PATCH", f"{API}/customers/{{customer_id}}"): {"name": "taken over"},
    ("POST", f"{API}/licenses/{{license_id}}/actions/extend"): {"days": 30},
    ("POST", f"{API}/licenses/{{license_id}}/actions/replace"): {},
    ("POST", f"{API}/licenses/{{license_id}}/subscription/actions/renew"): {"external_id": "x"},
    ("POST", f"{API}/licenses/{{license_id}}/units/{{action}}"): {"units": 1},
    ("POST", f"{API}/cloud-containers/{{container_id}}/redeem"): {"ticket": "placeholder"},
    ("PATCH", f"{API}/webhook-endpoints/{{endpoint_id}}"): {"description": "taken over"},
    ("POST", f"{API}/webhook-endpoints/{{endpoint_id}}/actions/rotate-secret"): {},
    ("POST", f"{API}/webhook-endpoints/{{endpoint_id}}/actions/replay-failed"): {},
    ("PATCH", f"{API}/shop-mappings/{{mapping_id}}"): {"sku": "TAKEN-OVER"},
    ("POST", f"{API}/orders/{{order_id}}/actions/cancel"): {},
    ("POST", f"{API}/orders/{{order_id}}/actions/return"): {
        "return_id": "taken over",
        "lines": [{"line_id": "1"}],
    },
}


@dataclass(frozen=True)
class Tenant:
    """A vendor with one object of every kind, all of them marked with ``marker``."""

    vendor: VendorHandle
    ids: dict[str, str]
    marker: str
    sku: str
    ticket_code: str
    license_ids: list[str]

    @property
    def leaks(self) -> list[str]:
        """Strings that only this vendor's data contains."""
        return [self.marker, self.ticket_code]


def populate(vendor: VendorHandle) -> Tenant:
    marker = f"m{secrets.token_hex(6)}"
    made = one_of_each(vendor, marker)
    return Tenant(vendor, made.ids, marker, made.sku, made.ticket_code, made.license_ids)


@pytest.fixture(scope="module")
def tenants(database: Database, master: MasterKey, client: TestClient) -> tuple[Tenant, Tenant]:
    factory = VendorFactory(database, master, client)
    return populate(factory.create()), populate(factory.create())


def everything(vendor: VendorHandle, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a list, following next_cursor to the end."""
    items, cursor = [], None
    while True:
        query = {**params, "limit": "200", **({"cursor": cursor} if cursor else {})}
        page = vendor.ok("GET", path, params=query)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def audit_count(tenant: Tenant) -> int:
    return len(everything(tenant.vendor, "/audit-events"))


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path and route.path.startswith(API)
        for method in route.methods or ()
    )


def path_params(path: str) -> set[str]:
    return {part[1:-1] for part in path.split("/") if part.startswith("{")}


def object_endpoints(app: FastAPI) -> list[tuple[str, str, str | None]]:
    """(method, path template, action) for every endpoint whose path names an object."""
    found = []
    for method, path in api_routes(app):
        if path_params(path) & OBJECT_PARAMS and not path.startswith(DEVICE_PROTOCOL):
            found += [(method, path, action) for action in ACTIONS.get(path, (None,))]
    return found


def list_endpoints(app: FastAPI) -> list[str]:
    return [path for method, path in api_routes(app) if method == "GET" and not path_params(path)]


def call_as(vendor: VendorHandle, endpoint: tuple[str, str, str | None], ids: dict[str, str]):
    method, path, action = endpoint
    url = path.format(**ids, **({"action": action} if action else {}))
    return vendor.client.request(
        method, url, headers=vendor.headers, json=BODIES.get((method, path))
    )


def not_found(response: Response) -> bool:
    return response.status_code == 404 and response.json()["code"] == "NOT_FOUND"


def leaked(tenant: Tenant, response: Response) -> list[str]:
    return [text for text in tenant.leaks if text in response.text]


# --- objects by id ----------------------------------------------------------------------


def test_every_path_parameter_is_known_to_the_cross_tenant_matrix(app: FastAPI) -> None:
    names = set().union(*(path_params(path) for _, path in api_routes(app)))
    assert names - OBJECT_PARAMS - OTHER_PARAMS == set()


def test_the_cross_tenant_matrix_reaches_every_kind_of_object(app: FastAPI) -> None:
    reached = set().union(*(path_params(path) for _, path, _ in object_endpoints(app)))
    assert reached >= OBJECT_PARAMS


def test_vendor_b_gets_404_and_nothing_of_vendor_a_on_every_endpoint_that_takes_an_id(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    events_before = audit_count(a)
    wrong = {}
    for endpoint in object_endpoints(app):
        response = call_as(b.vendor, endpoint, a.ids)
        right = (
            not_found(response)
            and response.headers["content-type"] == PROBLEM
            and not leaked(a, response)
        )
        if not right:
            wrong[" ".join(filter(None, endpoint))] = f"{response.status_code} {response.text}"
    assert wrong == {}
    assert audit_count(a) == events_before, "vendor B's attempts changed vendor A's data"


def test_vendor_a_still_reaches_its_own_objects_through_the_same_endpoints(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    """The control of the matrix: the ids are real, only the vendor is wrong. (A read
    may still fail for its own reason, e.g. ``NO_COUNTER``, but never as not found.)"""
    a, _ = tenants
    reads = [e for e in object_endpoints(app) if e[0] == "GET"]
    answers = {e[1]: call_as(a.vendor, e, a.ids) for e in reads}
    assert {path: answer.text for path, answer in answers.items() if not_found(answer)} == {}
    assert answers[f"{API}/licenses/{{license_id}}"].status_code == 200


def test_vendor_a_objects_are_untouched_after_vendor_b_tried_every_action(
    app: FastAPI, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    for endpoint in object_endpoints(app):
        call_as(b.vendor, endpoint, a.ids)
    states = {a.vendor.ok("GET", f"/licenses/{i}")["state"] for i in a.license_ids}
    assert states <= {"available", "activated"}
    assert a.vendor.ok("GET", f"/products/{a.ids['product_id']}")["name"].endswith(a.marker)
    assert a.vendor.ok("GET", f"/devices/{a.ids['device_id']}")["status"] != "blacklisted"
    kids = {key["kid"] for key in a.vendor.ok("GET", f"/vendors/{a.vendor.slug}/jwks.json")["keys"]}
    assert a.ids["kid"] in kids
    spare = next(k for k in a.vendor.ok("GET", "/api-keys")["items"] if k["id"] == a.ids["key_id"])
    assert spare["revoked_at"] is None
    revealed = a.vendor.ok("GET", "/audit-events", params={"action": "ticket.code_revealed"})
    assert revealed["items"] == []


# --- lists and filters -----------------------------------------------------------------


def test_no_list_shows_another_vendors_objects(app: FastAPI, tenants: tuple[Tenant, Tenant]):
    a, b = tenants
    for path in list_endpoints(app):
        items = everything(b.vendor, path.removeprefix(API))
        assert items, f"{path}: vendor B should see its own objects"
        assert [s for s in [*a.leaks, *a.ids.values()] if s in str(items)] == [], path


@pytest.mark.parametrize(
    ("path", "param", "value_of"),
    [
        ("/licenses", "ticket_id", "ticket_id"),
        ("/licenses", "customer_id", "customer_id"),
        ("/tickets", "customer_id", "customer_id"),
        ("/audit-events", "object_id", "product_id"),
        ("/audit-events", "object_id", "license_id"),
    ],
)
def test_filtering_a_list_by_another_vendors_id_finds_nothing(
    tenants: tuple[Tenant, Tenant], path: str, param: str, value_of: str
) -> None:
    a, b = tenants
    assert everything(a.vendor, path, **{param: a.ids[value_of]}) != []
    assert everything(b.vendor, path, **{param: a.ids[value_of]}) == []


def test_filtering_by_another_vendors_external_ids_finds_nothing(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    assert everything(b.vendor, "/orders", external_order_id=f"O-{a.marker}") == []
    assert everything(b.vendor, "/customers", external_id=f"C-{a.marker}") == []
    assert everything(b.vendor, "/licenses", product_code=f"P-{a.marker}") == []


def test_audit_events_of_one_vendor_are_never_visible_to_another(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    a_objects = {event["object_id"] for event in everything(a.vendor, "/audit-events")}
    b_objects = {event["object_id"] for event in everything(b.vendor, "/audit-events")}
    assert set(a.ids.values()) & a_objects
    assert a_objects & b_objects == set()


def test_the_public_key_set_of_a_vendor_holds_only_its_own_keys(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    kids_a = {k["kid"] for k in a.vendor.ok("GET", "/signing-keys")["items"]}
    published_b = b.vendor.ok("GET", f"/vendors/{b.vendor.slug}/jwks.json")["keys"]
    assert published_b
    assert {key["kid"] for key in published_b} & kids_a == set()


# --- references inside request bodies --------------------------------------------------


def test_a_ticket_code_of_another_vendor_is_not_found(tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    assert a.vendor.post("/tickets/lookup", json={"code": a.ticket_code}).status_code == 200
    response = b.vendor.post("/tickets/lookup", json={"code": a.ticket_code})
    assert response.status_code == 404
    assert response.json()["code"] == "TICKET_NOT_FOUND"
    assert leaked(a, response) == []


def test_a_device_cannot_activate_a_ticket_through_another_vendor(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    device = BareDevice(b.vendor.slug)
    response = b.vendor.client.post(
        f"{API}/vendors/{b.vendor.slug}/devices/activate",
        content=device.request("activate", a.ticket_code),
        headers={"Content-Type": "application/jose"},
    )
    assert response.status_code == 404
    assert leaked(a, response) == []


def test_a_template_cannot_be_made_from_another_vendors_product(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    body = {"sku": "STEAL", "name": "Steal", "product_id": a.ids["product_id"]}
    response = b.vendor.post("/templates", json=body)
    assert response.status_code == 404
    assert leaked(a, response) == []


def test_an_order_cannot_name_another_vendors_customer_or_sku(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    foreign_customer = {
        "external_order_id": "X-1",
        "customer_id": a.ids["customer_id"],
        "lines": [{"sku": b.sku}],
    }
    assert b.vendor.post("/orders", json=foreign_customer).status_code == 404
    foreign_sku = {"external_order_id": "X-2", "lines": [{"sku": a.sku}]}
    response = b.vendor.post("/orders", json=foreign_sku)
    assert response.status_code == 422
    assert response.json()["code"] == "UNKNOWN_SKU"
    assert everything(b.vendor, "/orders", external_order_id="X-1") == []


def test_a_batch_of_orders_cannot_name_another_vendors_customer_or_sku(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    orders = [
        {
            "external_order_id": "XB-1",
            "customer_id": a.ids["customer_id"],
            "lines": [{"sku": b.sku}],
        },
        {
            "external_order_id": "XB-2",
            "customer": {"external_id": f"C-{a.marker}"},
            "lines": [{"sku": b.sku}],
        },
        {"external_order_id": "XB-3", "lines": [{"sku": a.sku}]},
    ]
    answer = b.vendor.ok("POST", "/orders/bulk", json={"orders": orders})
    problems = [(item["status"], item["problem"]["code"]) for item in answer["results"]]
    assert problems == [("failed", "NOT_FOUND"), ("failed", "NOT_FOUND"), ("failed", "UNKNOWN_SKU")]
    assert everything(b.vendor, "/orders", external_order_id="XB-1") == []


def test_upserting_another_vendors_external_id_makes_a_customer_of_ones_own(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    path = f"/customers/by-external-id/SHARED-{secrets.token_hex(4)}"
    mine = a.vendor.request("PUT", path, json={"name": "A's"}).json()
    response = b.vendor.request("PUT", path, json={"name": "taken over"})
    assert response.status_code == 201
    assert response.json()["id"] != mine["id"]
    assert leaked(a, response) == []
    assert a.vendor.ok("GET", f"/customers/{mine['id']}")["name"] == "A's"


def test_a_license_cannot_be_replaced_by_another_vendors_template(
    tenants: tuple[Tenant, Tenant],
) -> None:
    a, b = tenants
    mine = next(
        i for i in b.license_ids if b.vendor.ok("GET", f"/licenses/{i}")["state"] == "available"
    )
    response = b.vendor.post(f"/licenses/{mine}/actions/replace", json={"sku": a.sku})
    assert response.status_code == 404
    assert b.vendor.ok("GET", f"/licenses/{mine}")["state"] == "available"


def test_vendors_may_use_the_same_codes_without_seeing_each_other(
    vendors: VendorFactory,
) -> None:
    a, b = vendors.create(), vendors.create()
    for vendor in (a, b):
        product = vendor.ok("POST", "/products", json={"code": "SAME", "name": vendor.slug})
        vendor.template(product=product, sku="SAME-SKU")
        vendor.ok("POST", "/customers", json={"name": vendor.slug, "external_id": "SAME"})
        vendor.order([{"sku": "SAME-SKU"}], external_order_id="SAME")
    for vendor in (a, b):
        (product,) = everything(vendor, "/products")
        assert product["name"] == vendor.slug
        assert len(everything(vendor, "/orders", external_order_id="SAME")) == 1


# --- people ----------------------------------------------------------------------------


def test_a_user_of_one_vendor_cannot_log_in_to_another(tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    email = f"{secrets.token_hex(4)}@example.test"
    with a.vendor.database.transaction() as session:
        tenancy.create_user(
            session,
            operator(a.vendor.id),
            a.vendor.id,
            email=email,
            password=PASSWORD,
            role="admin",
        )
    body = {"email": email, "password": PASSWORD}
    sessions = f"{API}/sessions"
    assert a.vendor.client.post(sessions, json={"vendor": a.vendor.slug, **body}).status_code == 201
    assert b.vendor.client.post(sessions, json={"vendor": b.vendor.slug, **body}).status_code == 401


def test_a_users_session_reaches_only_its_own_vendor(tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    token = a.vendor.user_token(Role.ADMIN)
    assert a.vendor.get(f"/products/{a.ids['product_id']}", token=token).status_code == 200
    response = a.vendor.get(f"/products/{b.ids['product_id']}", token=token)
    assert response.status_code == 404
    assert leaked(b, response) == []
