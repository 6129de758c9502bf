"""Who may call what: the authorization matrix over every endpoint, and logging in.

The matrix below names the scope each endpoint of ``/api/v1`` needs (``None``: public).
It is checked against the app's routes, so a new endpoint without an entry fails here
before it ships. Every endpoint is then called by every principal: the four user roles
(logged in through ``POST /api/v1/sessions``) and one API key per single scope. The
answer is 403 ``FORBIDDEN`` exactly when the principal lacks the scope, and never
401/403 otherwise. The device protocol is authenticated by the device itself (its
signature or its device token), so a vendor's credential must neither open it nor
change its answers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

from licentia.domain.actors import operator
from licentia.domain.scopes import ROLE_SCOPES, SCOPES, Role
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.tenancy import services as tenancy
from licentia.server.tenancy.models import UserSession, VendorUser
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.objects import one_of_each

API = "/api/v1"
PROBLEM = "application/problem+json"


def fresh(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class World:
    """One vendor holding one object of every kind the endpoints take an id of."""

    vendor: VendorHandle
    params: dict[str, str]
    sku: str
    ticket_code: str
    login: dict[str, str]


Body = Callable[[World], dict[str, Any] | str | None]


@dataclass(frozen=True)
class Rule:
    """What an endpoint needs: a scope (None: no bearer credential), a request body
    (a dict is sent as JSON, a str as a JOSE message), and path parameters of its own."""

    scope: str | None
    body: Body = field(default=lambda _world: None)
    params: dict[str, str] = field(default_factory=dict)
    device: bool = False  # the device protocol: signed by the device, not by a bearer


# A device-protocol message that is not even a JWS (nor JSON): whatever the answer,
# a vendor's bearer credential must not change it.
NOT_A_JWS = Rule(None, lambda w: "not-a-jws", device=True)

MATRIX: dict[tuple[str, str], Rule] = {
    ("POST", f"{API}/sessions"): Rule(None, lambda w: w.login),
    ("GET", f"{API}/vendors/{{slug}}/jwks.json"): Rule(None),
    # catalog
    ("POST", f"{API}/products"): Rule(
        "catalog:write", lambda w: {"code": fresh("P"), "name": "Product"}
    ),
    ("GET", f"{API}/products"): Rule("catalog:read"),
    ("GET", f"{API}/products/{{product_id}}"): Rule("catalog:read"),
    ("PATCH", f"{API}/products/{{product_id}}"): Rule("catalog:write", lambda w: {"name": "New"}),
    ("POST", f"{API}/templates"): Rule(
        "catalog:write",
        lambda w: {"sku": fresh("S"), "name": "T", "product_id": w.params["product_id"]},
    ),
    ("GET", f"{API}/templates"): Rule("catalog:read"),
    ("GET", f"{API}/templates/{{template_id}}"): Rule("catalog:read"),
    ("PATCH", f"{API}/templates/{{template_id}}"): Rule("catalog:write", lambda w: {"name": "N"}),
    # customers, orders, tickets
    ("POST", f"{API}/customers"): Rule("customers:write", lambda w: {"name": "Acme"}),
    ("GET", f"{API}/customers"): Rule("customers:read"),
    ("GET", f"{API}/customers/{{customer_id}}"): Rule("customers:read"),
    ("PATCH", f"{API}/customers/{{customer_id}}"): Rule(
        "customers:write", lambda w: {"name": "Acme Ltd"}
    ),
    ("POST", f"{API}/orders"): Rule(
        "orders:write", lambda w: {"external_order_id": fresh("O"), "lines": [{"sku": w.sku}]}
    ),
    ("POST", f"{API}/orders/bulk"): Rule(
        "orders:write",
        lambda w: {"orders": [{"external_order_id": fresh("O"), "lines": [{"sku": w.sku}]}]},
    ),
    ("PUT", f"{API}/customers/by-external-id/{{external_id}}"): Rule(
        "customers:write", lambda w: {"name": "Acme"}, params={"external_id": "C-upserted"}
    ),
    # (nobody: the scope is checked before the order, and the world's order stays whole)
    ("POST", f"{API}/orders/{{order_id}}/actions/cancel"): Rule(
        "orders:write", lambda w: {}, params={"order_id": "nobody"}
    ),
    ("POST", f"{API}/orders/{{order_id}}/actions/return"): Rule(
        "orders:write",
        lambda w: {"return_id": "R-1", "lines": [{"line_id": "1"}]},
        params={"order_id": "nobody"},
    ),
    ("GET", f"{API}/orders"): Rule("orders:read"),
    ("GET", f"{API}/orders/{{order_id}}"): Rule("orders:read"),
    ("GET", f"{API}/tickets"): Rule("orders:read"),
    ("GET", f"{API}/tickets/{{ticket_id}}"): Rule("orders:read"),
    ("POST", f"{API}/tickets/{{ticket_id}}/code"): Rule("orders:write"),
    ("POST", f"{API}/tickets/lookup"): Rule("orders:read", lambda w: {"code": w.ticket_code}),
    # licenses
    ("GET", f"{API}/licenses"): Rule("licenses:read"),
    ("GET", f"{API}/licenses/{{license_id}}"): Rule("licenses:read"),
    ("GET", f"{API}/licenses/{{license_id}}/document"): Rule("licenses:read"),
    ("POST", f"{API}/licenses/{{license_id}}/actions/extend"): Rule(
        "licenses:write", lambda w: {"days": 1}
    ),
    ("POST", f"{API}/licenses/{{license_id}}/actions/replace"): Rule(
        "licenses:write", lambda w: {}
    ),
    ("POST", f"{API}/licenses/{{license_id}}/actions/{{action}}"): Rule(
        "licenses:write", params={"action": "suspend"}
    ),
    ("POST", f"{API}/licenses/{{license_id}}/subscription/actions/renew"): Rule(
        "licenses:write", lambda w: {"external_id": fresh("INV")}
    ),
    ("POST", f"{API}/licenses/{{license_id}}/subscription/actions/cancel"): Rule(
        "licenses:write", lambda w: {}
    ),
    # devices: the vendor's side
    ("GET", f"{API}/devices"): Rule("licenses:read"),
    ("GET", f"{API}/devices/{{device_id}}"): Rule("licenses:read"),
    ("POST", f"{API}/devices/{{device_id}}/actions/{{action}}"): Rule(
        "licenses:write", params={"action": "clear-flags"}
    ),
    # devices: the device's side
    ("POST", f"{API}/vendors/{{slug}}/devices/activate"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/devices/sync"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/devices/offline"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/devices/receipts"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/devices/returns"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/devices/events"): NOT_A_JWS,
    # cloud containers, seats and counters: the vendor's side
    ("POST", f"{API}/cloud-containers"): Rule("licenses:write", lambda w: {"name": fresh("C")}),
    ("GET", f"{API}/cloud-containers"): Rule("licenses:read"),
    ("GET", f"{API}/cloud-containers/{{container_id}}"): Rule("licenses:read"),
    ("POST", f"{API}/cloud-containers/{{container_id}}/redeem"): Rule(
        "licenses:write", lambda w: {"ticket": w.ticket_code}
    ),
    ("POST", f"{API}/cloud-containers/{{container_id}}/actions/reset-credential"): Rule(
        "licenses:write"
    ),
    ("DELETE", f"{API}/cloud-containers/{{container_id}}/devices/{{device_id}}"): Rule(
        "licenses:write"
    ),
    ("GET", f"{API}/licenses/{{license_id}}/seats"): Rule("licenses:read"),
    ("GET", f"{API}/licenses/{{license_id}}/seat-events"): Rule("licenses:read"),
    ("DELETE", f"{API}/licenses/{{license_id}}/seats/{{lease_id}}"): Rule("licenses:write"),
    ("GET", f"{API}/licenses/{{license_id}}/units"): Rule("licenses:read"),
    ("POST", f"{API}/licenses/{{license_id}}/units/{{action}}"): Rule(
        "licenses:write", lambda w: {"units": 1}, params={"action": "top-up"}
    ),
    # named licenses and seats (nobody: the scope is checked before the person)
    ("GET", f"{API}/licenses/{{license_id}}/assignments"): Rule("licenses:read"),
    ("PUT", f"{API}/licenses/{{license_id}}/assignments/{{customer_user_id}}"): Rule(
        "licenses:write", params={"customer_user_id": "nobody"}
    ),
    ("DELETE", f"{API}/licenses/{{license_id}}/assignments/{{customer_user_id}}"): Rule(
        "licenses:write", params={"customer_user_id": "nobody"}
    ),
    # cloud containers, seats and counters: the device's side (a device token)
    ("POST", f"{API}/vendors/{{slug}}/cloud/redeem"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/devices"): NOT_A_JWS,
    ("DELETE", f"{API}/vendors/{{slug}}/cloud/devices/current"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/check"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/seats"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/seats/{{lease_id}}/heartbeat"): NOT_A_JWS,
    ("DELETE", f"{API}/vendors/{{slug}}/cloud/seats/{{lease_id}}"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/borrow"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/borrow/returns"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/counters/consume"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/cloud/events"): NOT_A_JWS,
    # the customer admin's view (the container credential)
    ("GET", f"{API}/vendors/{{slug}}/cloud/admin/seats"): NOT_A_JWS,
    ("DELETE", f"{API}/vendors/{{slug}}/cloud/admin/seats/{{lease_id}}"): NOT_A_JWS,
    ("GET", f"{API}/vendors/{{slug}}/cloud/admin/denials"): NOT_A_JWS,
    ("GET", f"{API}/vendors/{{slug}}/cloud/admin/devices"): NOT_A_JWS,
    ("DELETE", f"{API}/vendors/{{slug}}/cloud/admin/devices/{{device_id}}"): NOT_A_JWS,
    ("PATCH", f"{API}/vendors/{{slug}}/cloud/admin/container"): NOT_A_JWS,
    ("GET", f"{API}/vendors/{{slug}}/cloud/admin/counters"): NOT_A_JWS,
    # keys
    ("GET", f"{API}/signing-keys"): Rule("keys:read"),
    ("POST", f"{API}/signing-keys/rotate"): Rule("keys:write"),
    ("POST", f"{API}/signing-keys/{{kid}}/retire"): Rule("keys:write"),
    ("GET", f"{API}/api-keys"): Rule("keys:read"),
    # Only a scope every keys:write principal holds, so that granting it is allowed.
    ("POST", f"{API}/api-keys"): Rule(
        "keys:write", lambda w: {"name": "made", "scopes": ["keys:write"]}
    ),
    ("DELETE", f"{API}/api-keys/{{key_id}}"): Rule("keys:write"),
    # audit
    ("GET", f"{API}/audit-events"): Rule("audit:read"),
    # webhooks
    ("GET", f"{API}/webhook-endpoints"): Rule("webhooks:read"),
    ("POST", f"{API}/webhook-endpoints"): Rule(
        "webhooks:write", lambda w: {"url": "http://127.0.0.1:9/hooks"}
    ),
    ("GET", f"{API}/webhook-endpoints/{{endpoint_id}}"): Rule("webhooks:read"),
    ("PATCH", f"{API}/webhook-endpoints/{{endpoint_id}}"): Rule(
        "webhooks:write", lambda w: {"description": "changed"}
    ),
    ("DELETE", f"{API}/webhook-endpoints/{{endpoint_id}}"): Rule("webhooks:write"),
    ("POST", f"{API}/webhook-endpoints/{{endpoint_id}}/actions/rotate-secret"): Rule(
        "webhooks:write", lambda w: {}
    ),
    ("GET", f"{API}/webhook-endpoints/{{endpoint_id}}/deliveries"): Rule("webhooks:read"),
    ("GET", f"{API}/webhook-deliveries/{{delivery_id}}"): Rule("webhooks:read"),
    ("POST", f"{API}/webhook-deliveries/{{delivery_id}}/actions/replay"): Rule("webhooks:write"),
    ("POST", f"{API}/webhook-endpoints/{{endpoint_id}}/actions/replay-failed"): Rule(
        "webhooks:write", lambda w: {}
    ),
    # web shops: the vendor's settings, mappings and event log
    ("PUT", f"{API}/shops/{{provider}}"): Rule(
        "shops:write", lambda w: {"enabled": True}, params={"provider": "stripe"}
    ),
    ("GET", f"{API}/shops/{{provider}}"): Rule("shops:read", params={"provider": "stripe"}),
    ("DELETE", f"{API}/shops/{{provider}}"): Rule("shops:write", params={"provider": "paddle"}),
    ("POST", f"{API}/shop-mappings"): Rule(
        "shops:write",
        lambda w: {"provider": "paddle", "provider_ref": fresh("pri"), "sku": w.sku},
    ),
    ("GET", f"{API}/shop-mappings"): Rule("shops:read"),
    ("GET", f"{API}/shop-mappings/{{mapping_id}}"): Rule("shops:read"),
    ("PATCH", f"{API}/shop-mappings/{{mapping_id}}"): Rule("shops:write", lambda w: {"sku": w.sku}),
    ("DELETE", f"{API}/shop-mappings/{{mapping_id}}"): Rule("shops:write"),
    ("GET", f"{API}/shop-events"): Rule("shops:read"),
    ("GET", f"{API}/shop-events/{{shop_event_id}}"): Rule("shops:read"),
    # web shops: the shop's side (signed by the shop, not by a bearer)
    ("POST", f"{API}/vendors/{{slug}}/shops/stripe/events"): NOT_A_JWS,
    ("POST", f"{API}/vendors/{{slug}}/shops/paddle/events"): NOT_A_JWS,
}
PROTECTED = sorted(endpoint for endpoint, rule in MATRIX.items() if rule.scope is not None)


def api_endpoints(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves under /api/v1, included routers too."""
    return {
        (method, route.path)
        for route in iter_route_contexts(app.routes)
        if route.path and route.path.startswith(API)
        for method in route.methods or ()
    }


def new_user(vendor: VendorHandle, role: str) -> VendorUser:
    email = f"{role}-{secrets.token_hex(4)}@example.test"
    with vendor.database.transaction() as session:
        return tenancy.create_user(
            session, operator(vendor.id), vendor.id, email=email, password=PASSWORD, role=role
        )


def log_in(client: TestClient, slug: str, email: str, password: str = PASSWORD) -> Response:
    return client.post(
        f"{API}/sessions", json={"vendor": slug, "email": email, "password": password}
    )


def build_world(vendor: VendorHandle) -> World:
    made = one_of_each(vendor, f"m{secrets.token_hex(6)}")
    user = new_user(vendor, Role.READ_ONLY)
    login = {"vendor": vendor.slug, "email": user.email, "password": PASSWORD}
    return World(vendor, {"slug": vendor.slug, **made.ids}, made.sku, made.ticket_code, login)


def call(world: World, endpoint: tuple[str, str], token: str | None) -> Response:
    method, path = endpoint
    rule = MATRIX[endpoint]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = path.format(**(world.params | rule.params))
    body = rule.body(world)
    if isinstance(body, str):
        headers["Content-Type"] = "application/jose"
        return world.vendor.client.request(method, url, headers=headers, content=body)
    return world.vendor.client.request(method, url, headers=headers, json=body)


@pytest.fixture(scope="module")
def world(database: Database, master: MasterKey, client: TestClient) -> World:
    return build_world(VendorFactory(database, master, client).create())


@pytest.fixture(scope="module")
def principals(world: World) -> dict[str, tuple[str, frozenset[str]]]:
    """Name → (bearer token, scopes): every role, and an API key per single scope."""
    people = {
        f"user:{role.value}": (world.vendor.user_token(role.value), ROLE_SCOPES[role])
        for role in Role
    }
    keys = {
        f"key:{scope}": (world.vendor.new_api_key([scope]), frozenset({scope})) for scope in SCOPES
    }
    return people | keys


# --- the matrix ----------------------------------------------------------------------


def test_every_api_endpoint_has_an_entry_in_the_authorization_matrix(app: FastAPI) -> None:
    served = api_endpoints(app)
    assert sorted(served - MATRIX.keys()) == [], "endpoints without a matrix entry"
    assert sorted(MATRIX.keys() - served) == [], "matrix entries for endpoints that are gone"


def test_the_matrix_only_names_scopes_that_exist() -> None:
    assert {rule.scope for rule in MATRIX.values()} - {None} <= set(SCOPES)


def answered_right(rule: Rule, scopes: frozenset[str], response: Response) -> bool:
    if rule.scope is not None and rule.scope not in scopes:
        return (
            response.status_code == 403
            and response.headers["content-type"] == PROBLEM
            and response.json()["code"] == "FORBIDDEN"
        )
    return response.status_code not in (401, 403)


@pytest.mark.parametrize(
    "endpoint", sorted(k for k, r in MATRIX.items() if not r.device), ids=" ".join
)
def test_a_principal_is_forbidden_exactly_when_it_lacks_the_endpoints_scope(
    endpoint: tuple[str, str], world: World, principals: dict[str, tuple[str, frozenset[str]]]
) -> None:
    wrong = {}
    for name, (token, scopes) in principals.items():
        response = call(world, endpoint, token)
        if not answered_right(MATRIX[endpoint], scopes, response):
            wrong[name] = f"{response.status_code} {response.text[:160]}"
    assert wrong == {}


@pytest.mark.parametrize("endpoint", sorted(k for k, r in MATRIX.items() if r.device), ids=" ".join)
def test_vendor_credentials_neither_open_nor_change_the_device_protocol(
    endpoint: tuple[str, str], world: World, principals: dict[str, tuple[str, frozenset[str]]]
) -> None:
    def outcome(response: Response) -> tuple[int, str]:
        return response.status_code, response.json()["code"]

    assert outcome(call(world, endpoint, None))[0] < 500
    answers = {
        name: outcome(call(world, endpoint, token)) for name, (token, _) in principals.items()
    }
    first = next(iter(answers.values()))
    assert answers == dict.fromkeys(principals, first), "vendor scopes changed the answer"
    assert 400 <= first[0] < 500, "a vendor credential was taken for a device's"


# --- authentication ------------------------------------------------------------------


def unauthenticated(response: Response) -> bool:
    return (
        response.status_code == 401
        and response.headers["content-type"] == PROBLEM
        and response.headers.get("www-authenticate") == "Bearer"
        and response.json()["code"] == "UNAUTHENTICATED"
    )


def refused_everywhere(world: World, token: str | None) -> list[str]:
    """The protected endpoints that did *not* answer 401 to ``token``."""
    return [" ".join(e) for e in PROTECTED if not unauthenticated(call(world, e, token))]


def test_every_protected_endpoint_asks_for_a_bearer_credential_when_none_is_sent(
    world: World,
) -> None:
    assert refused_everywhere(world, None) == []


def test_public_endpoints_answer_without_a_credential(world: World) -> None:
    public = [e for e, rule in MATRIX.items() if rule.scope is None and not rule.device]
    assert {call(world, endpoint, None).status_code for endpoint in public} <= {200, 201}


@pytest.mark.parametrize(
    "token",
    ["garbage", "lic_", "lic_000000000000_forged", "lis_forged-session-token", "Bearer x"],
)
def test_an_unknown_or_forged_token_is_refused_everywhere(world: World, token: str) -> None:
    assert refused_everywhere(world, token) == []


def test_an_api_key_with_one_character_changed_is_refused(world: World) -> None:
    key = world.vendor.api_key
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert unauthenticated(world.vendor.get("/products", token=tampered))


def test_a_non_bearer_authorization_scheme_is_refused(world: World) -> None:
    response = world.vendor.client.get(
        f"{API}/products", headers={"Authorization": f"Basic {world.vendor.api_key}"}
    )
    assert unauthenticated(response)


def test_a_revoked_api_key_is_refused_everywhere(world: World) -> None:
    vendor = world.vendor
    issued = vendor.ok("POST", "/api-keys", json={"name": "doomed", "scopes": list(SCOPES)})
    assert vendor.get("/products", token=issued["secret"]).status_code == 200
    vendor.ok("DELETE", f"/api-keys/{issued['id']}")
    assert refused_everywhere(world, issued["secret"]) == []


def test_an_expired_session_is_refused_everywhere(world: World) -> None:
    vendor = world.vendor
    user = new_user(vendor, Role.ADMIN)
    token = log_in(vendor.client, vendor.slug, user.email).json()["token"]
    assert vendor.get("/products", token=token).status_code == 200
    with vendor.database.transaction() as session:
        session.execute(
            update(UserSession)
            .where(UserSession.user_id == user.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert refused_everywhere(world, token) == []


def test_a_disabled_user_loses_its_session_and_cannot_log_in_again(world: World) -> None:
    vendor = world.vendor
    user = new_user(vendor, Role.ADMIN)
    token = log_in(vendor.client, vendor.slug, user.email).json()["token"]
    with vendor.database.transaction() as session:
        session.execute(
            update(VendorUser).where(VendorUser.id == user.id).values(disabled_at=utcnow())
        )
    assert unauthenticated(vendor.get("/products", token=token))
    assert unauthenticated(log_in(vendor.client, vendor.slug, user.email))


# --- what a denied request does (nothing) ---------------------------------------------


def test_a_forbidden_write_changes_nothing(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    reader = vendor.user_token(Role.READ_ONLY)
    response = vendor.post("/products", token=reader, json={"code": "NOPE", "name": "No"})
    assert response.status_code == 403
    assert response.json()["scope"] == "catalog:write"
    assert vendor.ok("GET", "/products")["items"] == []
    events = vendor.ok("GET", "/audit-events", params={"action": "product.created"})
    assert events["items"] == []


def test_an_api_key_cannot_grant_scopes_it_does_not_hold(vendors: VendorFactory) -> None:
    vendor = vendors.create()
    key_admin = vendor.new_api_key(["keys:write", "keys:read"])
    wider = {"name": "wider", "scopes": ["keys:read", "licenses:write"]}
    response = vendor.post("/api-keys", token=key_admin, json=wider)
    assert response.status_code == 403
    assert response.json()["code"] == "FORBIDDEN"
    names = [key["name"] for key in vendor.ok("GET", "/api-keys")["items"]]
    assert "wider" not in names
    narrower = {"name": "narrower", "scopes": ["keys:read"]}
    assert vendor.post("/api-keys", token=key_admin, json=narrower).status_code == 201


# --- logging in ----------------------------------------------------------------------


@pytest.fixture
def account(vendors: VendorFactory) -> Iterator[tuple[VendorHandle, VendorUser]]:
    vendor = vendors.create()
    yield vendor, new_user(vendor, Role.SALES)


def test_a_wrong_password_an_unknown_user_and_an_unknown_vendor_get_the_same_answer(
    account: tuple[VendorHandle, VendorUser],
) -> None:
    vendor, user = account
    answers = [
        log_in(vendor.client, vendor.slug, user.email, "wrong password!"),
        log_in(vendor.client, vendor.slug, "nobody@example.test"),
        log_in(vendor.client, fresh("no-such-vendor"), user.email),
    ]
    assert all(unauthenticated(answer) for answer in answers)
    assert answers[0].json() == answers[1].json() == answers[2].json()


def test_a_session_token_acts_with_the_scopes_of_the_users_role(
    account: tuple[VendorHandle, VendorUser],
) -> None:
    vendor, user = account
    session = log_in(vendor.client, vendor.slug, user.email.upper())
    assert session.status_code == 201
    assert session.json()["role"] == "sales"
    token = session.json()["token"]
    assert vendor.post("/products", token=token, json={"code": "P", "name": "P"}).status_code == 201
    assert vendor.get("/products", token=token).json()["items"][0]["code"] == "P"
    assert vendor.get("/audit-events", token=token).status_code == 403


def test_passwords_are_stored_as_argon2id_hashes(
    account: tuple[VendorHandle, VendorUser],
) -> None:
    vendor, user = account
    with vendor.database.read() as session:
        stored = session.scalar(select(VendorUser.password_hash).where(VendorUser.id == user.id))
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
