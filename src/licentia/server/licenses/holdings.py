"""What a ticket holds, as its customer sees it: each license with its product,
features, state, validity and maintenance, and where it is in use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from licentia.domain.subscriptions import SubscriptionView
from licentia.server.catalog.models import Product, Template
from licentia.server.cloud.models import CloudContainer
from licentia.server.devices.models import Device
from licentia.server.licenses.models import License
from licentia.server.licenses.services import state_of, subscription_in


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
    transfer_limit: Mapping[str, Any] | None = None  # the options' limit on moves, if any


def ticket_holdings(
    session: Session, vendor_id: str, ticket_id: str, now: datetime
) -> list[Holding]:
    """The licenses of one of the vendor's tickets, oldest first (one query).

    The columns a holding shows, not whole licenses: of the options, only the
    subscription's terms and the transfer limit are read (a ticket of 80 licenses
    decoded every license's whole options, and built 80 ORM objects, for a page that
    shows neither)."""
    rows = session.execute(_HOLDINGS, {"vendor_id": vendor_id, "ticket_id": ticket_id}).all()
    return [
        Holding(
            license_id=row.id,
            product_code=row.product_code,
            product_name=row.product_name,
            template_name=row.template_name,
            delivery=row.delivery,
            features=list(row.features),
            state=state_of(row, now).value,
            valid_until=row.valid_until,
            maintenance_until=row.maintenance_until,
            activated_at=row.activated_at,
            device_key_id=row.key_id,
            container_name=row.container_name,
            subscription=subscription_in(row.subscription, row, now),
            transfer_limit=row.transfer_limit,
        )
        for row in rows
    ]


# Built once, with bound values, instead of on every ticket page (the console's and the
# portal's): building it and keying SQLAlchemy's cache on it showed in their profiles.
_HOLDINGS = (
    select(
        License.id,
        License.product_code,
        License.delivery,
        License.features,
        License.state,
        License.valid_until,
        License.maintenance_until,
        License.activated_at,
        License.paid_until,
        License.subscription_cancelled_at,
        License.renews_at,
        License.options["subscription"].label("subscription"),
        License.options["transfer_limit"].label("transfer_limit"),
        Product.name.label("product_name"),
        Template.name.label("template_name"),
        Device.key_id,
        CloudContainer.name.label("container_name"),
    )
    .join(Template, Template.id == License.template_id)
    .join(
        Product,
        (Product.vendor_id == License.vendor_id) & (Product.code == License.product_code),
    )
    .outerjoin(Device, Device.id == License.device_id)
    .outerjoin(CloudContainer, CloudContainer.id == License.container_id)
    .where(
        License.vendor_id == bindparam("vendor_id", type_=License.vendor_id.type),
        License.ticket_id == bindparam("ticket_id", type_=License.ticket_id.type),
    )
    .order_by(License.id)
)
