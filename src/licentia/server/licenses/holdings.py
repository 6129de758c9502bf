"""What a ticket holds, as its customer sees it: each license with its product,
features, state, validity and maintenance, and where it is in use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.subscriptions import SubscriptionView
from licentia.server.catalog.models import Product, Template
from licentia.server.cloud.models import CloudContainer
from licentia.server.devices.models import Device
from licentia.server.licenses.models import License
from licentia.server.licenses.services import state_of, subscription_of


@dataclass(frozen=True)
class Holding:
    license_id: str
    product_code: str
    product_name: str
    template_name: str
    delivery: str  # device | cloud | seat_pool
    features: list[str]
    state: str
    valid_until: datetime | None
    maintenance_until: datetime | None
    activated_at: datetime | None
    device_key_id: str | None  # in use on this device
    container_name: str | None  # or in this cloud container
    subscription: SubscriptionView | None = None  # paid one period at a time


def ticket_holdings(
    session: Session, vendor_id: str, ticket_id: str, now: datetime
) -> list[Holding]:
    """The licenses of one of the vendor's tickets, oldest first (one query)."""
    rows = session.execute(
        select(License, Product.name, Template.name, Device.key_id, CloudContainer.name)
        .join(Template, Template.id == License.template_id)
        .join(
            Product,
            (Product.vendor_id == License.vendor_id) & (Product.code == License.product_code),
        )
        .outerjoin(Device, Device.id == License.device_id)
        .outerjoin(CloudContainer, CloudContainer.id == License.container_id)
        .where(License.vendor_id == vendor_id, License.ticket_id == ticket_id)
        .order_by(License.id)
    ).all()
    return [
        Holding(
            license_id=license_.id,
            product_code=license_.product_code,
            product_name=product_name,
            template_name=template_name,
            delivery=license_.delivery,
            features=list(license_.features),
            state=state_of(license_, now).value,
            valid_until=license_.valid_until,
            maintenance_until=license_.maintenance_until,
            activated_at=license_.activated_at,
            device_key_id=key_id,
            container_name=container_name,
            subscription=subscription_of(license_, now),
        )
        for license_, product_name, template_name, key_id, container_name in rows
    ]
