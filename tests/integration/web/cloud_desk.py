"""A customer's cloud container, redeemed through the API, and its customer admin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from licentia.domain.actors import operator
from licentia.server.customer_users.services import create_customer_user
from licentia.server.db.engine import Database
from tests.factories import PASSWORD, VendorHandle
from tests.integration.web.pages import customer_with_admin


@dataclass(frozen=True)
class CustomerContainer:
    customer_id: str
    admin_email: str
    container_id: str
    credential: str
    product: str
    license_id: str


def customer_container(
    database: Database,
    vendor: VendorHandle,
    customer: tuple[str, str] | None = None,
    **options: Any,
) -> CustomerContainer:
    """A new customer (or ``customer``: its id and admin's e-mail) with a cloud
    container holding one license made with ``options``."""
    customer_id, email = customer or customer_with_admin(database, vendor)
    template = vendor.template(options)
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer_id)
    redeemed = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/redeem", json={"ticket": order["ticket_code"]}
    )
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    license_ = vendor.ok("GET", f"/licenses/{body['license_ids'][0]}")
    return CustomerContainer(
        customer_id,
        email,
        body["container_id"],
        body["credential"],
        license_["product_code"],
        license_["id"],
    )


def colleague(database: Database, vendor: VendorHandle, customer_id: str) -> str:
    """A customer user who is no customer admin; their e-mail."""
    email = f"colleague-{secrets.token_hex(4)}@customer.test"
    with database.transaction() as session:
        create_customer_user(
            session, operator(vendor.id), customer_id, email=email, role="member", password=PASSWORD
        )
    return email
