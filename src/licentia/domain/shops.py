"""Web shops' events as Licentia understands them, whatever the shop.

Each shop's gateway (``licentia.server.shops``) verifies an event's signature and
reads it into one of these commands; the same use cases then carry them out:

- ``Sale``: a paid sale becomes an order (or adds to the one it belongs to) for a
  customer found or created by the shop's customer id; its items are the shop's
  price or product ids, mapped to SKUs per vendor. ``valid_until``, given for a
  subscription's paid period, moves the order's time-limited licenses to its end
  (a subscription license is renewed up to it). A ``renewal`` (the shop's next
  period of a subscription) changes the subscription's order and never places one.
- ``Revocation``: a refund or a cancellation; the vendor's settings say whether the
  order's licenses are then suspended, withdrawn or left alone. A cancellation (the
  shop's subscription has ended) also cancels the order's subscriptions.
- ``Ignored``: an event the gateway does not act on (answered 200, so the shop stops
  sending it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Provider(StrEnum):
    STRIPE = "stripe"
    PADDLE = "paddle"


class RevocationAction(StrEnum):
    """What a refund or a cancellation does to the order's licenses."""

    NONE = "none"
    SUSPEND = "suspend"
    WITHDRAW = "withdraw"


class RevocationReason(StrEnum):
    REFUND = "refund"
    CANCEL = "cancel"


# Defaults of a new shop: a refunded sale's licenses stop working (reversibly); a
# cancelled subscription keeps what was paid for until its end of validity.
DEFAULT_REFUND_ACTION = RevocationAction.SUSPEND
DEFAULT_CANCEL_ACTION = RevocationAction.NONE


@dataclass(frozen=True)
class Buyer:
    """The shop's customer: ``external_id`` is the shop's customer id."""

    external_id: str
    name: str
    email: str | None = None


@dataclass(frozen=True)
class Item:
    """``quantity`` units of what the shop calls ``refs`` (its price id, then its
    product id): the first one mapped to a SKU decides."""

    refs: tuple[str, ...]
    quantity: int


@dataclass(frozen=True)
class Sale:
    order_ref: str  # the shop's id of the sale: checkout session, subscription, transaction
    buyer: Buyer | None
    items: tuple[Item, ...]
    references: tuple[str, ...]  # the shop's ids a later refund or cancellation names
    valid_until: datetime | None = None  # end of a subscription's paid period
    renewal: bool = False  # a subscription's next period: renews its order, places none


@dataclass(frozen=True)
class Revocation:
    reason: RevocationReason
    references: tuple[str, ...]


@dataclass(frozen=True)
class Ignored:
    reason: str


Command = Sale | Revocation | Ignored


@dataclass(frozen=True)
class ShopEventIn:
    """An event whose signature was verified, read into a command."""

    event_id: str
    event_type: str
    command: Command


def parse_item_list(text: str) -> list[Item]:
    """Items written as ``ref`` or ``ref:quantity``, separated by commas (how a vendor
    names them in a Checkout Session's metadata). Raises ValueError for a bad entry."""
    items = []
    for entry in text.split(","):
        ref, _, quantity = entry.strip().partition(":")
        ref = ref.strip()
        count = int(quantity) if quantity.strip() else 1
        if not ref or count < 1:
            raise ValueError(f"bad item {entry.strip()!r}")
        items.append(Item((ref,), count))
    return items
