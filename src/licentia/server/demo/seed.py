"""Seeding the demo vendor. Safe to run again: what exists is kept, not duplicated."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, operator
from licentia.domain.scopes import SCOPES
from licentia.server.catalog import services as catalog
from licentia.server.catalog.models import Product
from licentia.server.customer_users.models import CustomerUser
from licentia.server.customer_users.services import CustomerRole, create_customer_user
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import create_signing_key, list_signing_keys
from licentia.server.orders import services as orders
from licentia.server.tenancy import services as tenancy
from licentia.server.tenancy.branding import update_branding
from licentia.server.tenancy.models import Vendor, VendorBranding

DEMO_VENDOR = "demo"
DEMO_KEY_NAME = "demo key"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - development demo only, printed to the user
DEMO_USERS = {
    "admin": "admin@demo.example",
    "sales": "sales@demo.example",
    "support": "support@demo.example",
    "read-only": "auditor@demo.example",
}
DEMO_CUSTOMER_ADMIN = "admin@acme.example"
PRODUCT = "PHOTOPRO"
TEMPLATES: dict[str, tuple[str, list[str], dict[str, object]]] = {
    "PHOTOPRO-STD": (
        "PhotoPro Standard (perpetual, one device)",
        ["edit", "export"],
        {"maintenance_days": 365, "delivery": "device"},
    ),
    "PHOTOPRO-SUB": (
        "PhotoPro Subscription (1 year from activation)",
        ["edit", "export", "raw"],
        {"validity": {"kind": "days_from_activation", "days": 365}, "lease_days": 14},
    ),
    "PHOTOPRO-TEAM": (
        "PhotoPro Team (5 concurrent seats)",
        ["edit", "export", "raw", "batch"],
        {"delivery": "seat_pool", "seats": 5, "max_borrow_days": 7},
    ),
}


@dataclass(frozen=True)
class DemoResult:
    vendor_slug: str
    api_key: str
    ticket_code: str
    users: dict[str, str]
    password: str
    customer_admin: str


def seed_demo(session: Session, master: MasterKey) -> DemoResult:
    """Create (or complete) the demo vendor and issue its demo API key. The demo keys
    issued before are revoked: seeding again never leaves a trail of live full-scope
    keys (the key is shown once and kept only as a hash, so it cannot be shown again)."""
    vendor = session.scalar(select(Vendor).where(Vendor.slug == DEMO_VENDOR))
    if vendor is None:
        vendor = tenancy.create_vendor(
            session, operator(), slug=DEMO_VENDOR, name="Demo Software Ltd"
        )
    actor = operator(vendor.id)
    if not list_signing_keys(session, vendor.id):
        create_signing_key(session, actor, vendor.id, master)
    _seed_users(session, actor, vendor.id)
    _seed_branding(session, actor, vendor)
    _seed_catalog(session, actor, master)
    customer = _seed_customer(session, actor)
    _seed_customer_admin(session, actor, customer)
    result = orders.place_order(
        session,
        actor,
        master,
        external_order_id="DEMO-1001",
        customer_id=customer,
        lines=[orders.LineRequest("PHOTOPRO-STD", 2), orders.LineRequest("PHOTOPRO-TEAM", 1)],
    )
    ticket = orders.get_ticket(session, actor, result.order.ticket_id)
    return DemoResult(
        DEMO_VENDOR,
        _demo_key(session, actor, vendor.id),
        orders.ticket_code(ticket, master),
        dict(DEMO_USERS),
        DEMO_PASSWORD,
        DEMO_CUSTOMER_ADMIN,
    )


def _demo_key(session: Session, actor: Actor, vendor_id: str) -> str:
    for key in tenancy.list_api_keys(session, vendor_id):
        if key.name == DEMO_KEY_NAME and key.revoked_at is None:
            tenancy.revoke_api_key(session, actor, vendor_id, key.id)
    issued = tenancy.create_api_key(
        session, actor, vendor_id, name=DEMO_KEY_NAME, scopes=list(SCOPES)
    )
    return issued.secret


def _seed_users(session: Session, actor: Actor, vendor_id: str) -> None:
    existing = {u.email for u in tenancy.list_users(session, vendor_id)}
    for role, email in DEMO_USERS.items():
        if email not in existing:
            tenancy.create_user(
                session, actor, vendor_id, email=email, password=DEMO_PASSWORD, role=role
            )


def _seed_branding(session: Session, actor: Actor, vendor: Vendor) -> None:
    if session.get(VendorBranding, vendor.id) is None:
        update_branding(
            session,
            actor,
            vendor,
            display_name="Demo Software",
            primary_colour="#0b5563",
            accent_colour="#8a3b12",
            support_email="support@demo.example",
        )


def _seed_customer_admin(session: Session, actor: Actor, customer_id: str) -> None:
    known = select(CustomerUser.id).where(CustomerUser.email == DEMO_CUSTOMER_ADMIN)
    if session.scalar(known.where(CustomerUser.vendor_id == actor.vendor_id)) is None:
        create_customer_user(
            session,
            actor,
            customer_id,
            email=DEMO_CUSTOMER_ADMIN,
            role=CustomerRole.ADMIN,
            password=DEMO_PASSWORD,
        )


def _seed_catalog(session: Session, actor: Actor, master: MasterKey) -> None:
    product = session.scalar(catalog.products_query(actor).where(Product.code == PRODUCT))
    if product is None:
        product = catalog.create_product(
            session,
            actor,
            code=PRODUCT,
            name="PhotoPro",
            features=[
                {"code": c, "name": c.capitalize()} for c in ("edit", "export", "raw", "batch")
            ],
        )
    assert actor.vendor_id is not None
    for sku, (name, features, options) in TEMPLATES.items():
        if catalog.template_by_sku(session, actor.vendor_id, sku) is None:
            catalog.create_template(
                session,
                actor,
                master,
                sku=sku,
                name=name,
                product_id=product.id,
                features=features,
                options=options,
            )


def _seed_customer(session: Session, actor: Actor) -> str:
    found = session.scalar(orders.customers_query(actor, "CRM-0001"))
    if found is not None:
        return found.id
    customer = orders.create_customer(
        session, actor, name="Acme Photo GmbH", external_id="CRM-0001", email="it@acme.example"
    )
    return customer.id
