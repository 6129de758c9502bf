"""A vendor's shops: settings (the signing secret, what a refund or a cancellation
does), the mapping of the shop's price and product ids to SKUs, and the log of the
events received.

The signing secret is the shop's (Stripe's ``whsec_…``, Paddle's ``pdl_ntfset_…``):
the vendor copies it from the shop into Licentia, where it is kept under the master
key and never shown again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import AlreadyExistsError, NotFoundError, ValidationError
from licentia.domain.identifiers import clean_identifier
from licentia.domain.shops import (
    DEFAULT_CANCEL_ACTION,
    DEFAULT_REFUND_ACTION,
    Provider,
    RevocationAction,
)
from licentia.server.audit.services import record
from licentia.server.catalog.services import template_by_sku
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.orders.models import Order
from licentia.server.shops.models import ShopEvent, ShopMapping, ShopSettings
from licentia.server.tenancy.models import Vendor

SECRET_PURPOSE = "shop-signing-secret"  # noqa: S105 - a key derivation label
MAX_SECRET = 500
EVENT_STATUSES = ("processed", "failed")


def check_provider(provider: str) -> Provider:
    """Raises NotFoundError (``SHOP_UNKNOWN``) for a shop Licentia does not speak."""
    try:
        return Provider(provider)
    except ValueError:
        raise NotFoundError("shop", provider, code="SHOP_UNKNOWN") from None


def _action(value: str, field: str) -> str:
    try:
        return RevocationAction(value).value
    except ValueError:
        raise ValidationError(
            f"{field} is one of {', '.join(a.value for a in RevocationAction)}", field=field
        ) from None


# --- settings --------------------------------------------------------------------------


def put_settings(
    session: Session,
    actor: Actor,
    master: MasterKey,
    provider: str,
    changes: dict[str, Any],
) -> tuple[ShopSettings, bool]:
    """Connect the shop or change its settings (``signing_secret``, ``refund_action``,
    ``cancel_action``, ``enabled``); True when it was connected now. Raises
    ValidationError: a first connection without ``signing_secret``, an unknown action."""
    shop = check_provider(provider)
    settings = _settings(session, _vendor(actor), shop, lock=True)
    created = settings is None
    before = None if settings is None else settings_view(settings)
    secret = changes.get("signing_secret")
    if secret is not None and not 8 <= len(secret.strip()) <= MAX_SECRET:
        raise ValidationError(
            f"the signing secret has 8-{MAX_SECRET} characters", field="signing_secret"
        )
    if settings is None:
        if secret is None:
            raise ValidationError(
                "connecting a shop needs its signing secret", field="signing_secret"
            )
        settings = ShopSettings(
            vendor_id=_vendor(actor),
            provider=shop.value,
            refund_action=DEFAULT_REFUND_ACTION.value,
            cancel_action=DEFAULT_CANCEL_ACTION.value,
            enabled=True,
        )
        session.add(settings)
    if secret is not None:
        settings.signing_secret = master.encrypt(secret.strip().encode(), purpose=SECRET_PURPOSE)
    for name in ("refund_action", "cancel_action"):
        if changes.get(name) is not None:
            setattr(settings, name, _action(changes[name], name))
    if changes.get("enabled") is not None:
        settings.enabled = bool(changes["enabled"])
    settings.updated_at = utcnow()
    session.flush()
    after = settings_view(settings) | {"secret_changed": secret is not None}
    action = "shop.connected" if created else "shop.updated"
    record(session, actor, action, "shop", settings.id, before=before, after=after)
    return settings, created


def get_settings(session: Session, actor: Actor, provider: str) -> ShopSettings:
    """Raises NotFoundError (``SHOP_NOT_CONNECTED``) unless the vendor connected it."""
    settings = _settings(session, _vendor(actor), check_provider(provider))
    if settings is None:
        raise NotFoundError("shop", provider, code="SHOP_NOT_CONNECTED")
    return settings


def list_settings(session: Session, actor: Actor) -> list[ShopSettings]:
    query = select(ShopSettings).where(ShopSettings.vendor_id == _vendor(actor))
    return list(session.scalars(query.order_by(ShopSettings.provider)))


def disconnect(session: Session, actor: Actor, provider: str) -> None:
    """Forget the shop's settings and secret (its mappings and event log stay)."""
    settings = get_settings(session, actor, provider)
    record(session, actor, "shop.disconnected", "shop", settings.id, before=settings_view(settings))
    session.delete(settings)


def signing_secret(settings: ShopSettings, master: MasterKey) -> str:
    return master.decrypt(settings.signing_secret, purpose=SECRET_PURPOSE).decode()


def settings_view(settings: ShopSettings) -> dict[str, Any]:
    """The settings as the audit log shows them: never the secret."""
    return {
        "provider": settings.provider,
        "refund_action": settings.refund_action,
        "cancel_action": settings.cancel_action,
        "enabled": settings.enabled,
    }


def _settings(
    session: Session, vendor_id: str, provider: Provider, *, lock: bool = False
) -> ShopSettings | None:
    query = select(ShopSettings).where(
        ShopSettings.vendor_id == vendor_id, ShopSettings.provider == provider.value
    )
    return session.scalars(query.with_for_update() if lock else query).one_or_none()


def settings_for_events(session: Session, vendor_id: str, provider: Provider) -> ShopSettings:
    """The settings an incoming event is checked against. Raises NotFoundError
    (``SHOP_NOT_CONNECTED``) when the vendor has not connected the shop or turned it off."""
    settings = _settings(session, vendor_id, provider)
    if settings is None or not settings.enabled:
        raise NotFoundError("shop", provider.value, code="SHOP_NOT_CONNECTED")
    return settings


# --- mappings --------------------------------------------------------------------------


def create_mapping(
    session: Session, actor: Actor, *, provider: str, provider_ref: str, sku: str
) -> ShopMapping:
    """Map the shop's price or product id to a SKU. Raises ValidationError
    (``UNKNOWN_SKU``), AlreadyExistsError when the id is mapped already."""
    shop = check_provider(provider)
    vendor_id = _vendor(actor)
    ref = clean_identifier(provider_ref.strip(), field="provider_ref")
    _check_sku(session, vendor_id, sku)
    known = session.scalar(
        select(ShopMapping.id).where(
            ShopMapping.vendor_id == vendor_id,
            ShopMapping.provider == shop.value,
            ShopMapping.provider_ref == ref,
        )
    )
    if known is not None:
        raise AlreadyExistsError(f"{ref!r} is mapped already", field="provider_ref")
    mapping = ShopMapping(vendor_id=vendor_id, provider=shop.value, provider_ref=ref, sku=sku)
    session.add(mapping)
    session.flush()
    record(
        session,
        actor,
        "shop_mapping.created",
        "shop_mapping",
        mapping.id,
        after=mapping_view(mapping),
    )
    return mapping


def update_mapping(session: Session, actor: Actor, mapping_id: str, *, sku: str) -> ShopMapping:
    """Map the same shop id to another SKU (orders placed from now on)."""
    mapping = get_mapping(session, actor, mapping_id)
    _check_sku(session, mapping.vendor_id, sku)
    before = mapping_view(mapping)
    mapping.sku = sku
    mapping.updated_at = utcnow()
    session.flush()
    record(
        session,
        actor,
        "shop_mapping.updated",
        "shop_mapping",
        mapping.id,
        before=before,
        after=mapping_view(mapping),
    )
    return mapping


def delete_mapping(session: Session, actor: Actor, mapping_id: str) -> None:
    mapping = get_mapping(session, actor, mapping_id)
    record(
        session,
        actor,
        "shop_mapping.deleted",
        "shop_mapping",
        mapping.id,
        before=mapping_view(mapping),
    )
    session.delete(mapping)


def get_mapping(session: Session, actor: Actor, mapping_id: str) -> ShopMapping:
    mapping = session.scalar(
        select(ShopMapping).where(
            ShopMapping.id == mapping_id, ShopMapping.vendor_id == _vendor(actor)
        )
    )
    if mapping is None:
        raise NotFoundError("shop mapping", mapping_id)
    return mapping


def mappings_query(actor: Actor, provider: str | None = None) -> Select[ShopMapping]:
    query = select(ShopMapping).where(ShopMapping.vendor_id == _vendor(actor))
    if provider is not None:
        query = query.where(ShopMapping.provider == check_provider(provider).value)
    return query


def mapping_view(mapping: ShopMapping) -> dict[str, Any]:
    return {"provider": mapping.provider, "provider_ref": mapping.provider_ref, "sku": mapping.sku}


def _check_sku(session: Session, vendor_id: str, sku: str) -> None:
    if template_by_sku(session, vendor_id, sku) is None:
        raise ValidationError(f"no template with SKU {sku!r}", field="sku", code="UNKNOWN_SKU")


# --- the event log ---------------------------------------------------------------------


def events_query(
    actor: Actor, *, provider: str | None = None, status: str | None = None
) -> Select[ShopEvent]:
    """The events the vendor's shops sent (page them by id: oldest first)."""
    query = select(ShopEvent).where(ShopEvent.vendor_id == _vendor(actor))
    if provider is not None:
        query = query.where(ShopEvent.provider == check_provider(provider).value)
    if status is not None:
        if status not in EVENT_STATUSES:
            raise ValidationError(f"status is one of {', '.join(EVENT_STATUSES)}", field="status")
        query = query.where(ShopEvent.status == status)
    return query


def recent_events(session: Session, actor: Actor, limit: int) -> list[ShopEvent]:
    """The vendor's latest events, newest first."""
    query = events_query(actor).order_by(ShopEvent.id.desc()).limit(limit)
    return list(session.scalars(query))


def tickets_of_events(session: Session, events: list[ShopEvent]) -> dict[str, str]:
    """The ticket of each order the events made or changed, by order id."""
    order_ids = {event.order_id for event in events if event.order_id}
    if not order_ids:
        return {}
    rows = session.execute(select(Order.id, Order.ticket_id).where(Order.id.in_(order_ids)))
    return {order_id: ticket_id for order_id, ticket_id in rows}


def get_event(session: Session, actor: Actor, event_id: str) -> ShopEvent:
    event = session.scalar(
        select(ShopEvent).where(ShopEvent.id == event_id, ShopEvent.vendor_id == _vendor(actor))
    )
    if event is None:
        raise NotFoundError("shop event", event_id)
    return event


def vendor_slug(session: Session, actor: Actor) -> str:
    """The vendor's slug: its shops' events are sent to an address that names it."""
    slug = session.scalar(select(Vendor.slug).where(Vendor.id == _vendor(actor)))
    assert slug is not None
    return slug


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "shop calls need a vendor-scoped actor"
    return actor.vendor_id
