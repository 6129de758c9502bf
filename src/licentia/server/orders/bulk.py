"""Many orders at once, from an ERP's batch or a CSV file: each placed in a unit of
work of its own, so that one refused order costs nobody else theirs.

Each order is idempotent by its external order id (``services.place_order``): a batch
sent again, whole or in part, creates nothing twice and answers each order as a replay.
The orders are placed in the order they were sent; two of one batch with the same
external id are the same order, the second a replay or an extension of the first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, NotFoundError, ValidationError
from licentia.domain.identifiers import clean_identifier
from licentia.server.keys.master import MasterKey
from licentia.server.orders.models import Customer
from licentia.server.orders.services import LineRequest, OrderResult, place_order
from licentia.server.orders.upserts import upsert_customer

T = TypeVar("T")
# Runs one unit of work and commits it (``Context.write``, ``run_write``).
Write = Callable[[Callable[[Session], T]], T]

MAX_BULK_ORDERS = 100
# Licenses of one batch, every order's lines together: each order is its own
# transaction, so this bounds how long one request runs, not how long a lock is held.
MAX_BULK_LICENSES = 5000


class Outcome(StrEnum):
    CREATED = "created"  # a new order
    EXTENDED = "extended"  # a known order that gained the lines it did not have
    REPLAYED = "replayed"  # a known order, sent again as it was: nothing changed
    FAILED = "failed"  # refused: nothing of this order was written


@dataclass(frozen=True)
class CustomerRef:
    """The order's customer by the ERP's id. With ``fields`` (``name``, ``email``) it is
    upserted as ``upserts.upsert_customer`` does; without, it must exist."""

    external_id: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BulkOrder:
    external_order_id: str
    lines: list[LineRequest]
    customer_id: str | None = None
    customer: CustomerRef | None = None


@dataclass(frozen=True)
class BulkResult:
    index: int
    external_order_id: str
    outcome: Outcome
    placed: OrderResult | None = None
    error: LicentiaError | None = None


def check_batch(orders: list[BulkOrder]) -> None:
    """Raises ValidationError (``BULK_TOO_LARGE``) for a batch above the limits, before
    anything of it is written."""
    if not orders:
        raise ValidationError("a batch needs at least one order", field="orders")
    licenses = sum(line.quantity for order in orders for line in order.lines)
    if len(orders) > MAX_BULK_ORDERS or licenses > MAX_BULK_LICENSES:
        raise ValidationError(
            f"a batch holds at most {MAX_BULK_ORDERS} orders and {MAX_BULK_LICENSES}"
            f" licenses ({len(orders)} orders, {licenses} licenses sent)",
            field="orders",
            code="BULK_TOO_LARGE",
            max_orders=MAX_BULK_ORDERS,
            max_licenses=MAX_BULK_LICENSES,
        )


def place_orders(
    write: Write[Any],
    actor: Actor,
    master: MasterKey,
    orders: list[BulkOrder],
    *,
    on_result: Callable[[BulkResult], None] | None = None,
) -> list[BulkResult]:
    """Place each order in its own unit of work (``write`` commits it); the results in
    the order sent. A refused order is a FAILED result carrying the domain's error;
    the orders around it are placed all the same. ``on_result`` hears of each result
    as it is known (a progress bar). Raises ValidationError (``BULK_TOO_LARGE``)."""
    check_batch(orders)
    results = []
    for index, order in enumerate(orders):
        result = _place(write, actor, master, index, order)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _place(
    write: Write[Any], actor: Actor, master: MasterKey, index: int, order: BulkOrder
) -> BulkResult:
    try:
        placed: OrderResult = write(lambda session: place_one(session, actor, master, order))
    except LicentiaError as error:
        return BulkResult(index, order.external_order_id, Outcome.FAILED, error=error)
    except DataError:
        # A value the database cannot hold (a NUL character on PostgreSQL): this
        # order's input, as the API answers it for a single order.
        refused = ValidationError("a value in this order cannot be stored (a NUL character?)")
        return BulkResult(index, order.external_order_id, Outcome.FAILED, error=refused)
    return BulkResult(index, placed.order.external_order_id, outcome_of(placed), placed)


def outcome_of(placed: OrderResult) -> Outcome:
    if placed.created:
        return Outcome.CREATED
    return Outcome.EXTENDED if placed.added_lines else Outcome.REPLAYED


def place_one(session: Session, actor: Actor, master: MasterKey, order: BulkOrder) -> OrderResult:
    """One order of a batch, its customer upserted or found first, in the caller's
    unit of work. Raises what ``place_order`` raises, ValidationError (both a
    ``customer_id`` and a ``customer``), NotFoundError (a customer named by external
    id only, and unknown)."""
    customer_id = order.customer_id
    if order.customer is not None:
        if customer_id is not None:
            raise ValidationError(
                "name the customer by customer_id or by customer, not both", field="customer"
            )
        customer_id = _customer_id(session, actor, order.customer)
    return place_order(
        session,
        actor,
        master,
        external_order_id=order.external_order_id,
        customer_id=customer_id,
        lines=order.lines,
    )


def _customer_id(session: Session, actor: Actor, ref: CustomerRef) -> str:
    if ref.fields:
        return upsert_customer(session, actor, ref.external_id, ref.fields).customer.id
    external_id = clean_identifier(ref.external_id, field="customer.external_id")
    assert actor.vendor_id is not None
    found = session.scalar(
        select(Customer.id).where(
            Customer.vendor_id == actor.vendor_id, Customer.external_id == external_id
        )
    )
    if found is None:
        raise NotFoundError("customer", f"with external id {external_id!r}")
    return found
