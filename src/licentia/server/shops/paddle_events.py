"""Paddle Billing's events: the ``Paddle-Signature`` checked with Paddle's SDK
(``paddle-python-sdk``), the event read into a command of ``licentia.domain.shops``.
Nothing here calls Paddle (docs/integrations.md, "Paddle").

- ``transaction.completed``: a Sale of the transaction's items. A subscription's
  transactions (the first and each renewal) go to the subscription's order, valid
  until the end of the billing period paid for; any other is the transaction's own.
  A renewal (``origin`` ``subscription_recurring``) renews the order's licenses and
  places no order.
- ``subscription.canceled``: a cancellation of the subscription's order.
- ``adjustment.created`` / ``adjustment.updated``: an approved refund or chargeback of
  a whole transaction is a refund of the order the transaction belongs to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from paddle_billing.Notifications import Secret, Verifier

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
)

SIGNATURE_HEADER = "Paddle-Signature"
TOLERANCE_SECONDS = 5  # Paddle's SDK's default: Paddle signs each attempt when it sends it
REFUNDS = frozenset({"refund", "chargeback"})
RENEWAL = "subscription_recurring"  # the origin of a subscription's next period


@dataclass(frozen=True)
class _SignedRequest:
    """What the SDK's Verifier reads of a request: its headers and its raw body."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def verified_event(payload: bytes, signature: str | None, secret: str) -> ShopEventIn:
    """The event, if Paddle signed ``payload`` with ``secret`` within the tolerance.
    Raises AuthenticationError (``SHOP_SIGNATURE_INVALID``) otherwise, and
    ValidationError (``SHOP_EVENT_INVALID``) for an event that is not one."""
    request = _SignedRequest(payload, {SIGNATURE_HEADER: signature or ""})
    try:
        genuine = Verifier(TOLERANCE_SECONDS).verify(request, Secret(secret))
    except (ValueError, TypeError, ConnectionRefusedError, UnicodeDecodeError):
        genuine = False  # a header the SDK cannot even read
    if not genuine:
        raise AuthenticationError(
            "the Paddle-Signature header does not match this body, secret and time",
            code="SHOP_SIGNATURE_INVALID",
        )
    try:
        return read_event(json.loads(payload))
    except ValueError as error:
        raise _invalid("the body is not a JSON event") from error


def read_event(event: dict[str, Any]) -> ShopEventIn:
    """A signed event's command (pure: no I/O)."""
    try:
        event_id, event_type = str(event["event_id"]), str(event["event_type"])
        return ShopEventIn(event_id, event_type, _command(event_type, event["data"]))
    except (KeyError, TypeError, AttributeError) as error:
        raise _invalid(f"the event lacks {error}") from error


def _command(event_type: str, data: dict[str, Any]) -> Command:
    if event_type == "transaction.completed":
        return _transaction(data)
    if event_type == "subscription.canceled":
        return Revocation(RevocationReason.CANCEL, (data["id"],))
    if event_type in ("adjustment.created", "adjustment.updated"):
        return _adjustment(data)
    return Ignored(f"{event_type} is not an event Licentia acts on")


def _transaction(data: dict[str, Any]) -> Sale:
    subscription = data.get("subscription_id")
    period = data.get("billing_period") or {}
    customer = data.get("customer_id")
    return Sale(
        order_ref=subscription or data["id"],
        buyer=Buyer(customer, customer) if customer else None,
        items=tuple(_item(item) for item in data["items"]),
        references=tuple(ref for ref in (data["id"], subscription) if ref),
        valid_until=_time(period.get("ends_at")) if subscription else None,
        renewal=bool(subscription) and data.get("origin") == RENEWAL,
    )


def _item(item: dict[str, Any]) -> Item:
    price = item.get("price") or {}
    refs = (price.get("id") or item.get("price_id"), price.get("product_id"))
    return Item(tuple(ref for ref in refs if ref), int(item.get("quantity") or 1))


def _adjustment(data: dict[str, Any]) -> Command:
    if data.get("action") not in REFUNDS or data.get("status") != "approved":
        return Ignored("only an approved refund or chargeback changes licenses")
    if any(item.get("type") == "partial" for item in data.get("items") or ()):
        return Ignored("a partial refund leaves the licenses as they are")
    return Revocation(RevocationReason.REFUND, (data["transaction_id"],))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _invalid(message: str) -> ValidationError:
    return ValidationError(message, code="SHOP_EVENT_INVALID")
