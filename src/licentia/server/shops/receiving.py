"""An event from a vendor's shop, carried out once.

``receive`` checks the signature against the vendor's signing secret, reads the event
(``stripe_events``, ``paddle_events``) and carries out its command in one transaction.
The event's id makes it count once: the transaction first claims the event's row of
``shop_events``; a concurrent request for the same event waits on that row (or, when
it is new, on its unique key), and once the first commits it finds the event
processed and answers what the first did, whatever the number of retries or replays.

An event that cannot be carried out (a price mapped to no SKU, a template that ended)
changes nothing; its row is marked ``failed`` with the reason, for the vendor to see,
and the shop is answered with a problem (4xx) so that it sends the event again: once
the vendor fixed the cause, the next retry makes the order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.emails import check_address
from licentia.domain.errors import (
    ConflictError,
    IllegalTransitionError,
    LicentiaError,
    NotFoundError,
    ValidationError,
)
from licentia.domain.shops import (
    Buyer,
    Ignored,
    Item,
    Provider,
    Revocation,
    RevocationAction,
    RevocationReason,
    Sale,
    ShopEventIn,
)
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.licenses.services import change_state, extend_license, state_of
from licentia.server.orders import services as orders
from licentia.server.orders.models import Customer, OrderLine
from licentia.server.shops import paddle_events, stripe_events
from licentia.server.shops.models import ShopEvent, ShopMapping, ShopReference
from licentia.server.shops.services import settings_for_events, signing_secret
from licentia.server.subscriptions.services import cancel_subscription, renew_subscription
from licentia.server.tenancy.services import vendor_id_of

log = logging.getLogger("licentia.shops")
MAX_NAME = 200
MAX_ERROR = 500
_VERIFIERS: dict[Provider, Callable[[bytes, str | None, str], ShopEventIn]] = {
    Provider.STRIPE: stripe_events.verified_event,
    Provider.PADDLE: paddle_events.verified_event,
}


@dataclass(frozen=True)
class Receipt:
    """What became of an event: ``processed`` now, ``replayed`` (processed before),
    or ``ignored`` (not an event Licentia acts on)."""

    status: str
    event_id: str
    event_type: str
    outcome: str | None = None
    order_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class _Shop:
    vendor_id: str
    secret: str
    actions: dict[RevocationReason, RevocationAction]


def shop_actor(vendor_id: str, provider: Provider) -> Actor:
    """Who stands behind what an event changes, in the audit log: the shop."""
    return Actor(ActorKind.SHOP, provider.value, vendor_id)


def receive(
    db: Database,
    master: MasterKey,
    provider: Provider,
    vendor_slug: str,
    payload: bytes,
    signature: str | None,
) -> Receipt:
    """Carry out a shop's event once. Raises NotFoundError (``SHOP_NOT_CONNECTED``),
    AuthenticationError (``SHOP_SIGNATURE_INVALID``), ValidationError
    (``SHOP_EVENT_INVALID``; ``SHOP_ITEM_UNMAPPED``, ``SHOP_ITEMS_MISSING`` and the
    order's own errors, recorded on the event for the vendor) or ConflictError."""
    shop = run_read(db, lambda s: _shop_of(s, master, provider, vendor_slug))
    event = _VERIFIERS[provider](payload, signature, shop.secret)
    if isinstance(event.command, Ignored):
        return Receipt("ignored", event.event_id, event.event_type, detail=event.command.reason)
    actor = shop_actor(shop.vendor_id, provider)
    try:
        return run_write(db, lambda s: carry_out(s, actor, master, provider, event, shop.actions))
    except LicentiaError as error:
        failure = error
        run_write(db, lambda s: _record_failure(s, shop.vendor_id, provider, event, failure))
        raise


def _shop_of(session: Session, master: MasterKey, provider: Provider, slug: str) -> _Shop:
    vendor_id = vendor_id_of(session, slug)
    if vendor_id is None:
        raise NotFoundError("shop", provider.value, code="SHOP_NOT_CONNECTED")
    settings = settings_for_events(session, vendor_id, provider)
    actions = {
        RevocationReason.REFUND: RevocationAction(settings.refund_action),
        RevocationReason.CANCEL: RevocationAction(settings.cancel_action),
    }
    return _Shop(vendor_id, signing_secret(settings, master), actions)


def carry_out(
    session: Session,
    actor: Actor,
    master: MasterKey,
    provider: Provider,
    event: ShopEventIn,
    actions: dict[RevocationReason, RevocationAction],
) -> Receipt:
    """The event's command, in the caller's transaction, unless it was carried out
    already (then its receipt, ``replayed``)."""
    claim = _claim(session, actor, provider, event)
    if claim.status == "processed":
        return Receipt("replayed", event.event_id, event.event_type, claim.outcome, claim.order_id)
    command = event.command
    order_id: str | None
    if isinstance(command, Sale):
        outcome, order_id = _sell(session, actor, master, provider, command, event.event_id)
    else:
        assert isinstance(command, Revocation)
        action = actions[command.reason]
        outcome, order_id = _revoke(session, actor, provider, command, action, event.event_id)
    claim.status, claim.outcome, claim.order_id = "processed", outcome, order_id
    claim.error_code = claim.error_message = None
    claim.updated_at = utcnow()
    session.flush()
    return Receipt("processed", event.event_id, event.event_type, outcome, order_id)


def _claim(session: Session, actor: Actor, provider: Provider, event: ShopEventIn) -> ShopEvent:
    """The event's row, locked; a new one (``processing``) when it is seen first."""
    known = session.scalars(
        _event_query(actor.vendor_id or "", provider, event.event_id).with_for_update()
    ).one_or_none()
    if known is not None:
        if known.status != "processed":
            known.attempts += 1
        return known
    claim = ShopEvent(
        vendor_id=actor.vendor_id,
        provider=provider.value,
        event_id=event.event_id,
        event_type=event.event_type,
        status="processing",
        attempts=1,
    )
    session.add(claim)
    session.flush()  # a concurrent request for this event waits here, then retries
    return claim


def _event_query(vendor_id: str, provider: Provider, event_id: str) -> Select[ShopEvent]:
    return select(ShopEvent).where(
        ShopEvent.vendor_id == vendor_id,
        ShopEvent.provider == provider.value,
        ShopEvent.event_id == event_id,
    )


def _record_failure(
    session: Session, vendor_id: str, provider: Provider, event: ShopEventIn, error: LicentiaError
) -> None:
    """Mark the event failed with the reason, unless a concurrent request processed it."""
    known = session.scalars(
        _event_query(vendor_id, provider, event.event_id).with_for_update()
    ).one_or_none()
    if known is None:
        known = ShopEvent(
            vendor_id=vendor_id,
            provider=provider.value,
            event_id=event.event_id,
            event_type=event.event_type,
            attempts=1,
        )
        session.add(known)
    elif known.status == "processed":
        return
    else:
        known.attempts += 1  # the attempt's own count was rolled back with its work
    known.status = "failed"
    known.error_code = error.code
    known.error_message = error.message[:MAX_ERROR]
    known.updated_at = utcnow()
    session.flush()


# --- a sale ----------------------------------------------------------------------------


def _sell(
    session: Session,
    actor: Actor,
    master: MasterKey,
    provider: Provider,
    sale: Sale,
    event_id: str,
) -> tuple[str, str | None]:
    """Place the sale's order (or add its new SKUs to the one it belongs to), link the
    shop's references to it, and move its licenses to the end of the paid period. A
    renewal of a subscription Licentia has no order for places none (``no_order``)."""
    external_order_id = f"{provider.value}:{sale.order_ref}"
    known = session.scalars(orders.orders_query(actor, external_order_id)).one_or_none()
    if sale.renewal and known is None:
        log.warning(
            "%s renewal of subscription %s: Licentia has no order for it, nothing renewed",
            provider.value,
            sale.order_ref,
        )
        return "no_order", None
    lines = _lines(session, actor, provider, sale.items)
    outcome = "unchanged"
    if known is None or {line.sku for line in lines} - {line.sku for line in known.lines}:
        customer_id = _customer_id(session, actor, sale.buyer) if known is None else None
        had = {line.sku for line in known.lines} if known else set()
        placed = orders.place_order(
            session,
            actor,
            master,
            external_order_id=external_order_id,
            customer_id=customer_id,
            lines=[line for line in lines if line.sku not in had],
        )
        order_id = placed.order.id
        outcome = "order_created" if placed.created else "lines_added"
    else:
        order_id = known.id
    _link(session, actor, provider, sale.references, order_id)
    paid_until = sale.valid_until
    if paid_until is not None and _renew(session, actor, provider, event_id, order_id, paid_until):
        outcome = "renewed" if outcome == "unchanged" else outcome
    return outcome, order_id


def _lines(
    session: Session, actor: Actor, provider: Provider, items: tuple[Item, ...]
) -> list[orders.LineRequest]:
    """One line per SKU (its id is the SKU), the quantities of its items added up.
    Raises ValidationError (``SHOP_ITEM_UNMAPPED``) for an item no mapping names."""
    if not items:
        raise ValidationError("the sale has no items", code="SHOP_ITEMS_MISSING", field="items")
    refs = {ref for item in items for ref in item.refs}
    rows = session.execute(
        select(ShopMapping.provider_ref, ShopMapping.sku).where(
            ShopMapping.vendor_id == actor.vendor_id,
            ShopMapping.provider == provider.value,
            ShopMapping.provider_ref.in_(refs),
        )
    )
    mapped = {ref: sku for ref, sku in rows}
    quantities: dict[str, int] = {}
    for index, item in enumerate(items):
        sku = next((mapped[ref] for ref in item.refs if ref in mapped), None)
        if sku is None:
            names = " or ".join(repr(ref) for ref in item.refs) or "an item without an id"
            raise ValidationError(
                f"{names} is mapped to no SKU: map it (shop mappings), the shop's retry then"
                " makes the order",
                code="SHOP_ITEM_UNMAPPED",
                field=f"items[{index}]",
                refs=list(item.refs),
            )
        quantities[sku] = quantities.get(sku, 0) + item.quantity
    return [orders.LineRequest(sku=sku, quantity=n, line_id=sku) for sku, n in quantities.items()]


def _customer_id(session: Session, actor: Actor, buyer: Buyer | None) -> str | None:
    """The customer with the shop's customer id as external id, made if new."""
    if buyer is None:
        return None
    known = session.scalars(orders.customers_query(actor, buyer.external_id)).one_or_none()
    if known is not None:
        return known.id
    customer: Customer = orders.create_customer(
        session,
        actor,
        name=" ".join(buyer.name.split())[:MAX_NAME] or buyer.external_id,
        external_id=buyer.external_id,
        email=_address_or_none(buyer.email),
    )
    return customer.id


def _address_or_none(email: str | None) -> str | None:
    """The buyer's address, or none if the shop sent something else: a paid order is
    not refused for the address the shop holds."""
    try:
        return None if email is None else check_address(email, field="email")
    except ValidationError:
        return None


def _link(
    session: Session, actor: Actor, provider: Provider, references: tuple[str, ...], order_id: str
) -> None:
    known = set(
        session.scalars(
            select(ShopReference.reference).where(
                ShopReference.vendor_id == actor.vendor_id,
                ShopReference.provider == provider.value,
                ShopReference.reference.in_(references),
            )
        )
    )
    for reference in references:
        if reference not in known:
            session.add(
                ShopReference(
                    vendor_id=actor.vendor_id,
                    provider=provider.value,
                    reference=reference,
                    order_id=order_id,
                )
            )
    session.flush()


def _licenses_of(session: Session, order_id: str) -> list[License]:
    return list(
        session.scalars(
            select(License)
            .join(OrderLine, OrderLine.id == License.order_line_id)
            .where(OrderLine.order_id == order_id)
            .order_by(License.id)
        )
    )


def _renew(
    session: Session,
    actor: Actor,
    provider: Provider,
    event_id: str,
    order_id: str,
    until: datetime,
) -> bool:
    """Move the order's licenses to ``until``, the end of the period paid; True if any
    moved. A subscription license is renewed by the subscriptions' use case (its paid
    period, audited and sent as ``subscription.renewed``, once per license and event
    id); any other time-limited license is extended by the licenses' (audited and sent
    as ``license.extended``) where ``until`` lies later than its end."""
    now, moved = utcnow(), False
    for license_ in _licenses_of(session, order_id):
        try:
            if license_.paid_until is not None:
                moved |= _pay_period(session, actor, provider, event_id, license_.id, until)
            elif license_.valid_until is not None and license_.valid_until < until and now < until:
                extend_license(session, actor, license_.id, until=until, days=None)
                moved = True
        except IllegalTransitionError:
            continue  # withdrawn or replaced: a payment does not bring it back
    return moved


def _pay_period(
    session: Session,
    actor: Actor,
    provider: Provider,
    event_id: str,
    license_id: str,
    until: datetime,
) -> bool:
    """Renew the subscription up to ``until``; True if a period was paid now."""
    try:
        result = renew_subscription(
            session,
            actor,
            license_id,
            source=provider.value,
            external_id=event_id,
            paid_until=until,
        )
    except ConflictError as error:
        if error.code != "SUBSCRIPTION_CANCELLED":
            raise
        return False  # cancelled in Licentia: it runs out, whatever the shop still bills
    return result.renewal is not None and not result.replayed


# --- a refund or a cancellation --------------------------------------------------------


def _revoke(
    session: Session,
    actor: Actor,
    provider: Provider,
    revocation: Revocation,
    action: RevocationAction,
    event_id: str,
) -> tuple[str, str | None]:
    """The vendor's action for a refund or a cancellation on the order's licenses. A
    cancellation first cancels the order's subscriptions: the shop's subscription has
    ended, so no payment and no automatic renewal will renew them again."""
    order_id = session.scalar(
        select(ShopReference.order_id)
        .where(
            ShopReference.vendor_id == actor.vendor_id,
            ShopReference.provider == provider.value,
            ShopReference.reference.in_(revocation.references),
        )
        .limit(1)
    )
    if order_id is None:
        return "no_order", None
    cancelled = revocation.reason is RevocationReason.CANCEL and _cancel_subscriptions(
        session, actor, provider, event_id, order_id
    )
    if action is RevocationAction.NONE:
        return ("subscription_cancelled" if cancelled else "no_action"), order_id
    verb, outcome = _VERBS[action]
    now = utcnow()
    for license_ in _licenses_of(session, order_id):
        if action is RevocationAction.SUSPEND and state_of(license_, now).value == "suspended":
            continue
        try:
            change_state(session, actor, license_.id, verb)
        except IllegalTransitionError:
            continue  # withdrawn, replaced or expired already: nothing left to stop
    return outcome, order_id


def _cancel_subscriptions(
    session: Session, actor: Actor, provider: Provider, event_id: str, order_id: str
) -> bool:
    """Cancel the subscription of each subscription license of the order with the
    subscriptions' use case (audited and sent as ``subscription.cancelled``, once: a
    subscription cancelled before stays as it is); True if the order has any.

    Both shops send the event when the subscription has ended, at the end of its
    period or at once; a cancelled subscription runs to the end of its paid period
    without the grace, which is now for one that ended at its period's end or after
    its payments failed. Stopping a license before the end of what was paid is the
    cancel action's work."""
    licenses = _licenses_of(session, order_id)
    subscriptions = [license_.id for license_ in licenses if license_.paid_until is not None]
    for license_id in subscriptions:
        cancel_subscription(session, actor, license_id, source=provider.value, external_id=event_id)
    return bool(subscriptions)


_VERBS = {
    RevocationAction.SUSPEND: ("suspend", "licenses_suspended"),
    RevocationAction.WITHDRAW: ("withdraw", "licenses_withdrawn"),
}
