"""One object of every kind an endpoint takes an id of, for tests that call them all
(the authorization matrix, the cross-tenant matrix)."""

from __future__ import annotations

from dataclasses import dataclass

from licentia.domain.actors import operator
from licentia.server.customer_users.services import create_customer_user
from licentia.server.webhooks.delivery import fan_out
from tests.factories import VendorHandle
from tests.integration.device_messages import activate_device
from tests.support.shops import checkout_session, connect, stripe_event


@dataclass(frozen=True)
class Objects:
    """``ids``: a value for every id in the API's paths (``lease_id`` names none: a lease
    exists only while a device holds a seat)."""

    ids: dict[str, str]
    sku: str
    ticket_code: str
    license_ids: list[str]


def one_of_each(vendor: VendorHandle, marker: str) -> Objects:
    """Create the objects, each name and external id carrying ``marker``."""
    endpoint = vendor.ok(
        "POST",
        "/webhook-endpoints",
        json={
            "url": "http://127.0.0.1:9/hooks",  # never called: the tests' app delivers nothing
            "event_types": ["order.created"],
            "description": f"W-{marker}",
        },
    )
    product = vendor.ok(
        "POST",
        "/products",
        json={"code": f"P-{marker}", "name": f"Product {marker}", "features": [{"code": "edit"}]},
    )
    template = vendor.template(
        {"validity": {"kind": "days_from_issue", "days": 30}, "units": 100},
        product=product,
        sku=f"S-{marker}",
        name=f"Template {marker}",
    )
    customer = vendor.ok(
        "POST",
        "/customers",
        json={"name": f"Customer {marker}", "external_id": f"C-{marker}", "email": f"{marker}@x.t"},
    )
    order = vendor.ok(
        "POST",
        "/orders",
        json={
            "external_order_id": f"O-{marker}",
            "customer_id": customer["id"],
            "lines": [{"sku": template["sku"], "quantity": 2}],
        },
    )
    ticket = vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    device_id = activate_device(vendor, order["ticket_code"])
    with vendor.database.transaction() as session:
        # The order's event becomes a delivery to the endpoint; a shared database may
        # hold other tests' events before it, taken a batch at a time.
        while fan_out(session):
            pass
    (delivery,) = vendor.ok("GET", f"/webhook-endpoints/{endpoint['id']}/deliveries")["items"]
    with vendor.database.transaction() as session:
        colleague = create_customer_user(
            session, operator(vendor.id), customer["id"], email=f"u-{marker}@x.t", role="member"
        ).user.id
    old_kid = vendor.ok("GET", "/signing-keys")["items"][0]["kid"]
    vendor.ok("POST", "/signing-keys/rotate")
    spare = vendor.ok("POST", "/api-keys", json={"name": f"K-{marker}", "scopes": ["audit:read"]})
    container = vendor.ok("POST", "/cloud-containers", json={"name": f"B-{marker}"})
    shop = connect(vendor)
    mapping = shop.map(f"price_{marker}", template["sku"])
    shop.send(stripe_event("checkout.session.completed", checkout_session([("price_x", 1)])))
    [shop_event] = vendor.ok("GET", "/shop-events")["items"]
    ids = {
        "product_id": product["id"],
        "template_id": template["id"],
        "customer_id": customer["id"],
        "order_id": order["id"],
        "ticket_id": ticket["id"],
        "license_id": ticket["license_ids"][0],
        "device_id": device_id,
        "kid": old_kid,
        "key_id": spare["id"],
        "container_id": container["id"],
        "lease_id": "no-such-lease",
        "endpoint_id": endpoint["id"],
        "delivery_id": delivery["id"],
        "customer_user_id": colleague,
        "mapping_id": mapping["id"],
        "shop_event_id": shop_event["id"],
    }
    return Objects(ids, template["sku"], order["ticket_code"], ticket["license_ids"])
