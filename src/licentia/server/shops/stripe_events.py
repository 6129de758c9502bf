"""Stripe's events: the signature checked with the ``stripe`` package, the event read
into a command of ``licentia.domain.shops``. Nothing here calls Stripe: what an order
needs must be in the event (docs/integrations.md, "Stripe").

- ``checkout.session.completed`` and ``checkout.session.async_payment_succeeded``:
  a paid Checkout Session is a Sale. Its items come from ``line_items`` when the event
  carries them expanded, else from the session's metadata ``licentia_items``
  (``price_…`` or ``price_…:2``, separated by commas). A subscription's session is
  the subscription's order; any other is the session's own.
- ``invoice.paid`` of a subscription: a Sale of the invoice's lines into the
  subscription's order, valid until the end of the period paid for. A renewal
  (``billing_reason`` ``subscription_cycle``) renews the order's licenses and places
  no order; any other (the first invoice of a subscription made outside Checkout, an
  update's) places the order if the subscription has none yet.
- ``charge.refunded`` (refunded in full): a refund of the order its payment belongs to.
- ``customer.subscription.deleted``: a cancellation of the subscription's order.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import stripe

from licentia.domain.errors import AuthenticationError, ValidationError
from licentia.domain.shops import (
    Buyer,
    Command,
    Ignored,
    Item,
    Revocation,
    RevocationReason,
    Sale,
    ShopEventIn,
    parse_item_list,
)

SIGNATURE_HEADER = "Stripe-Signature"
TOLERANCE_SECONDS = 300  # Stripe's own default: an older signature is a replay
ITEMS_METADATA = "licentia_items"
PAID = frozenset({"paid", "no_payment_required"})
RENEWAL = "subscription_cycle"  # the billing_reason of a subscription's next period


def verified_event(payload: bytes, signature: str | None, secret: str) -> ShopEventIn:
    """The event, if Stripe signed ``payload`` with ``secret`` within the tolerance.
    Raises AuthenticationError (``SHOP_SIGNATURE_INVALID``) otherwise, and
    ValidationError (``SHOP_EVENT_INVALID``) for an event that is not one."""
    try:
        stripe.Webhook.construct_event(
            payload, signature or "", secret, tolerance=TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as error:
        raise AuthenticationError(
            "the Stripe-Signature header does not match this body, secret and time",
            code="SHOP_SIGNATURE_INVALID",
        ) from error
    except ValueError as error:
        raise _invalid("the body is not a JSON event") from error
    return read_event(json.loads(payload))


def read_event(event: dict[str, Any]) -> ShopEventIn:
    """A signed event's command (pure: no I/O)."""
    try:
        event_id, event_type = str(event["id"]), str(event["type"])
        obj = event["data"]["object"]
        return ShopEventIn(event_id, event_type, _command(event_type, obj))
    except (KeyError, TypeError, AttributeError) as error:
        raise _invalid(f"the event lacks {error}") from error


def _command(event_type: str, obj: dict[str, Any]) -> Command:
    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        return _checkout(obj)
    if event_type == "invoice.paid":
        return _invoice(obj)
    if event_type == "charge.refunded":
        if not obj.get("refunded"):
            return Ignored("a partial refund leaves the licenses as they are")
        refs = (obj.get("payment_intent"), _id(obj.get("invoice")), obj["id"])
        return Revocation(RevocationReason.REFUND, _present(refs))
    if event_type == "customer.subscription.deleted":
        return Revocation(RevocationReason.CANCEL, (obj["id"],))
    return Ignored(f"{event_type} is not an event Licentia acts on")


def _checkout(session: dict[str, Any]) -> Command:
    if session.get("payment_status") not in PAID:
        return Ignored("not paid yet: the order follows checkout.session.async_payment_succeeded")
    subscription = _id(session.get("subscription"))
    return Sale(
        order_ref=subscription or session["id"],
        buyer=_buyer(
            _id(session.get("customer")),
            session.get("customer_details") or {},
        ),
        items=tuple(_checkout_items(session)),
        references=_present(
            (
                session["id"],
                _id(session.get("payment_intent")),
                subscription,
                _id(session.get("invoice")),
            )
        ),
    )


def _checkout_items(session: dict[str, Any]) -> list[Item]:
    expanded = session.get("line_items")
    if isinstance(expanded, dict) and expanded.get("data"):
        return [_line_item(line) for line in expanded["data"]]
    listed = (session.get("metadata") or {}).get(ITEMS_METADATA)
    if not listed:
        raise ValidationError(
            "the Checkout Session names no items: expand its line_items or set its metadata"
            f" {ITEMS_METADATA!r} (docs/integrations.md)",
            code="SHOP_ITEMS_MISSING",
            field=f"metadata.{ITEMS_METADATA}",
        )
    try:
        return parse_item_list(listed)
    except ValueError as error:
        raise ValidationError(
            f"metadata {ITEMS_METADATA!r}: {error} (write price_…:quantity, separated by commas)",
            code="SHOP_ITEMS_MISSING",
            field=f"metadata.{ITEMS_METADATA}",
        ) from error


def _line_item(line: dict[str, Any]) -> Item:
    price = line.get("price") or {}
    refs = (_id(price), _id(price.get("product")) if isinstance(price, dict) else None)
    return Item(_present(refs), int(line.get("quantity") or 1))


def _invoice(invoice: dict[str, Any]) -> Command:
    subscription = _id(invoice.get("subscription")) or _id(
        ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    )
    if subscription is None:
        return Ignored("an invoice outside a subscription: its sale comes from Checkout")
    lines = invoice["lines"]["data"]
    ends = [line["period"]["end"] for line in lines if (line.get("period") or {}).get("end")]
    return Sale(
        order_ref=subscription,
        buyer=_buyer(
            _id(invoice.get("customer")),
            {"email": invoice.get("customer_email"), "name": invoice.get("customer_name")},
        ),
        items=tuple(_invoice_item(line) for line in lines),
        references=_present(
            (
                subscription,
                invoice["id"],
                _id(invoice.get("payment_intent")),
                _id(invoice.get("charge")),
            )
        ),
        valid_until=datetime.fromtimestamp(max(ends), UTC) if ends else None,
        renewal=invoice.get("billing_reason") == RENEWAL,
    )


def _invoice_item(line: dict[str, Any]) -> Item:
    """An invoice line names its price as ``price`` (API versions before 2025-03-31)
    or under ``pricing.price_details`` (from then on)."""
    details = (line.get("pricing") or {}).get("price_details") or {}
    price = line.get("price") or {}
    refs = (
        _id(price) or details.get("price"),
        (_id(price.get("product")) if isinstance(price, dict) else None) or details.get("product"),
    )
    return Item(_present(refs), int(line.get("quantity") or 1))


def _buyer(customer: str | None, details: dict[str, Any]) -> Buyer | None:
    if customer is None:
        return None
    email = details.get("email") or None
    return Buyer(customer, details.get("name") or email or customer, email)


def _id(value: Any) -> str | None:
    """An id, whether the event holds it as a string or as an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if value else None


def _present(values: tuple[str | None, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, code="SHOP_EVENT_INVALID")
