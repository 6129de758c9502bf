"""A vendor and a customer with something on every main page of both fronts (a
flagged device, a held seat, used units, a colleague…), and the addresses of those
pages: what the accessibility and phone-width tests walk through."""

from __future__ import annotations

from dataclasses import dataclass

from licentia.domain.actors import operator
from licentia.server.db.engine import Database
from licentia.server.devices.models import Device
from licentia.server.devices.services import CLONE, flag_device
from licentia.server.webhooks.delivery import fan_out
from tests.factories import VendorHandle
from tests.integration.device_messages import activate_device
from tests.integration.test_cloud import CloudUser
from tests.integration.web.cloud_desk import colleague, customer_container
from tests.integration.web.failed_jobs import failed_job
from tests.integration.web.pages import staff_user
from tests.support.shops import checkout_session, connect, stripe_event


def console_pages(vendor: VendorHandle) -> list[str]:
    """Every main page of the console, each showing at least one row; the vendor gains
    a second staff member, so that the staff list has actions."""
    customer = vendor.ok("POST", "/customers", json={"name": "Acme Corp"})
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 1}], customer_id=customer["id"])
    device_id = activate_device(vendor, vendor.order()["ticket_code"])
    with vendor.database.transaction() as session:
        device = session.get_one(Device, device_id)
        flag_device(session, operator(vendor.id), device, CLONE, "seen on other hardware")
    staff_user(vendor, "support")
    license_id = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"][0]
    endpoint = vendor.ok("POST", "/webhook-endpoints", json={"url": "https://erp.example/h"})
    vendor.order()
    with vendor.database.transaction() as session:  # its events become logged deliveries
        while fan_out(session):
            pass
    shop = connect(vendor)
    shop.map("price_showcase", template["sku"])
    for price in ("price_showcase", "price_unmapped"):  # an order, and a failed event
        shop.send(stripe_event("checkout.session.completed", checkout_session([(price, 1)])))
    cancelled = vendor.order()  # the orders' list shows a cancelled order
    vendor.ok("POST", f"/orders/{cancelled['id']}/actions/cancel", json={})
    failed_job(vendor.database, vendor.id)
    return [
        "/console/",
        "/console/products",
        f"/console/products/{template['product_id']}",
        "/console/templates",
        "/console/templates/new",
        f"/console/templates/{template['id']}",
        "/console/customers",
        f"/console/customers/{customer['id']}",
        "/console/orders",
        "/console/orders/new",
        "/console/tickets",
        f"/console/tickets/{order['ticket_id']}",
        "/console/licenses",
        "/console/licenses?state=activated",
        f"/console/licenses/{license_id}",
        "/console/devices",
        "/console/devices?flag=any",
        f"/console/devices/{device_id}",
        "/console/offline",
        "/console/shops",
        "/console/api-keys",
        "/console/signing-keys",
        "/console/webhooks",
        f"/console/webhooks/{endpoint['id']}",
        "/console/jobs",
        "/console/staff",
        "/console/audit",
        f"/console/audit?object_type=license&object_id={license_id}",
        "/console/audit/verify",
        "/console/branding",
    ]


@dataclass(frozen=True)
class PortalShowcase:
    admin_email: str  # the customer admin's login (the factories' password)
    pages: list[str]


def portal_pages(database: Database, vendor: VendorHandle) -> PortalShowcase:
    """Every page of the portal a customer admin sees, each with something on it: a
    seat pool with a held seat and used units, a ticket of device licenses and a cloud
    license, a colleague."""
    mine = customer_container(database, vendor, delivery="seat_pool", seats=2, units=50)
    user = CloudUser(vendor, mine.credential, "office-pc")
    assert user.checkout(mine.product, "ann", device="office-pc").status_code == 201
    assert user.consume(mine.product, 5, "job-1").status_code == 200
    template, cloud = vendor.template(), vendor.template({"delivery": "cloud"})
    lines = [{"sku": template["sku"], "quantity": 2}, {"sku": cloud["sku"], "quantity": 1}]
    order = vendor.order(lines, customer_id=mine.customer_id)  # the cloud form shows too
    colleague(database, vendor, mine.customer_id)
    portal = f"/portal/{vendor.slug}"
    container = f"{portal}/containers/{mine.container_id}"
    return PortalShowcase(
        mine.admin_email,
        [
            f"{portal}/",
            f"{portal}/tickets/{order['ticket_id']}",
            f"{portal}/offline",
            f"{portal}/containers",
            container,
            f"{container}/seats",
            f"{container}/counters",
            f"{container}/counters/{mine.license_id}",
            f"{portal}/users",
        ],
    )
