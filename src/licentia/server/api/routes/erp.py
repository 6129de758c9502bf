"""The calls a vendor's ERP or CRM makes besides single orders (docs/integrations.md):
orders in batches, cancellations and returns, and customers kept by their external id.

Each is safe to send again: a batch by each order's external order id, a return by
its ``return_id``, a cancellation by its order, a customer by its external id.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from licentia.server.api.context import Context, require
from licentia.server.api.problems import problem_of
from licentia.server.api.routes.orders import (
    CustomerOut,
    OrderCreate,
    OrderPlaced,
    order_placed,
)
from licentia.server.api.schemas import ID, Email, Identifier, LineId, Name
from licentia.server.api.threads import ThreadedRoute
from licentia.server.orders import bulk, returns, upserts
from licentia.server.orders.services import MAX_LICENSES_PER_ORDER, LineRequest

router = APIRouter(tags=["orders"], route_class=ThreadedRoute)
# A batch of 100 orders of a few lines each is about 30 KB of JSON; the most it may
# hold (100 orders of 500 lines with long ids) is far more, and is refused early.
BULK_BODY = 1024 * 1024
# Licenses one return may name, as many as an order may hold.
MAX_RETURNED = MAX_LICENSES_PER_ORDER

# --- customers by external id ------------------------------------------------------


class CustomerUpsert(BaseModel):
    name: Name
    email: Email | None = Field(default=None, description="left out or null: the customer has none")


@router.put(
    "/customers/by-external-id/{external_id}",
    response_model=CustomerOut,
    responses={201: {"model": CustomerOut, "description": "the customer was created"}},
)
def upsert_customer(
    body: CustomerUpsert,
    external_id: Annotated[Identifier, Path(description="the ERP's or CRM's customer id")],
    ctx: Context = Depends(require("customers:write")),
) -> JSONResponse:
    """Create the customer with this external id, or set its name and e-mail: 201
    when created, 200 when it existed (changed or not; nothing is audited when
    nothing changed). The external id is kept in Unicode NFC; one holding a control
    or invisible character is refused (``IDENTIFIER_INVALID``)."""
    fields = {"name": body.name, "email": body.email}

    def work(session: Any) -> tuple[int, dict[str, Any]]:
        done = upserts.upsert_customer(session, ctx.actor, external_id, fields)
        out = CustomerOut.model_validate(done.customer).model_dump(mode="json")
        return (201 if done.created else 200), out

    status, out = ctx.write(work)
    return JSONResponse(out, status_code=status)


# --- orders in batches -------------------------------------------------------------


class BatchCustomer(BaseModel):
    external_id: Identifier
    name: Name | None = Field(
        default=None,
        description="given: the customer is created or updated (as PUT "
        "/customers/by-external-id does); left out: it must exist",
    )
    email: Email | None = None


class BatchOrder(OrderCreate):
    customer: BatchCustomer | None = Field(
        default=None, description="the customer by the ERP's id, instead of customer_id"
    )


class Batch(BaseModel):
    orders: list[BatchOrder] = Field(min_length=1, max_length=bulk.MAX_BULK_ORDERS)


class BatchItem(BaseModel):
    index: int = Field(description="the order's position in the request, from 0")
    external_order_id: str
    status: Literal["created", "extended", "replayed", "failed"]
    order: OrderPlaced | None = Field(description="the order placed; null when it failed")
    problem: dict[str, Any] | None = Field(
        description="why it failed: the problem document (RFC 9457) a single POST /orders "
        "would have been answered with, its status included; null otherwise"
    )


class BatchOut(BaseModel):
    results: list[BatchItem]
    created: int
    extended: int
    replayed: int
    failed: int


@router.post("/orders/bulk", response_model=BatchOut, max_body_size=BULK_BODY)
def place_orders(body: Batch, ctx: Context = Depends(require("orders:write"))) -> BatchOut:
    """Place up to 100 orders (5,000 licenses in all), each in a transaction of its
    own: always 200 with one result per order, in the order sent — ``created``,
    ``extended`` (a known order that gained lines), ``replayed`` (a known order sent
    as it was), or ``failed`` with its problem. Orders that failed changed nothing;
    the others are committed whatever became of the rest. Each order is idempotent by
    its external order id, so a batch may be sent again as it is (after a timeout, or
    with its failed orders corrected): nothing is created twice. A batch too large is
    refused as a whole (422 ``BULK_TOO_LARGE``) before any order is placed."""
    batch = [_bulk_order(order) for order in body.orders]
    results = bulk.place_orders(ctx.write, ctx.actor, ctx.master, batch)
    items = [_item(result) for result in results]
    counts = {outcome.value: 0 for outcome in bulk.Outcome}
    for item in items:
        counts[item.status] += 1
    return BatchOut(results=items, **counts)


def _bulk_order(order: BatchOrder) -> bulk.BulkOrder:
    customer = None
    if order.customer is not None:
        fields = order.customer.model_dump(exclude_unset=True, exclude={"external_id"})
        customer = bulk.CustomerRef(order.customer.external_id, fields)
    return bulk.BulkOrder(
        external_order_id=order.external_order_id,
        lines=[LineRequest(x.sku, x.quantity, x.line_id) for x in order.lines],
        customer_id=order.customer_id,
        customer=customer,
    )


def _item(result: bulk.BulkResult) -> BatchItem:
    return BatchItem(
        index=result.index,
        external_order_id=result.external_order_id,
        status=result.outcome.value,
        order=order_placed(result.placed) if result.placed else None,
        problem=problem_of(result.error) if result.error else None,
    )


# --- cancellations and returns -----------------------------------------------------


class Cancellation(BaseModel):
    activated: returns.Activated = Field(
        default=returns.Activated.WITHDRAW,
        description="what becomes of licenses already activated: withdrawn, or suspended "
        "(kept on the device, unusable; a vendor may resume them)",
    )


class ReturnLineIn(BaseModel):
    line_id: LineId
    quantity: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RETURNED,
        description="licenses to take back; left out: all of the line's not yet taken back",
    )


class ReturnIn(Cancellation):
    # A return names something to take back: lines, licenses, or both (else 422).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["lines"], "properties": {"lines": {"minItems": 1}}},
                {"required": ["license_ids"], "properties": {"license_ids": {"minItems": 1}}},
            ]
        }
    )

    return_id: Identifier = Field(description="the ERP's id of the return (credit memo)")
    lines: list[ReturnLineIn] = Field(default_factory=list, max_length=500)
    license_ids: list[Annotated[str, Field(max_length=ID)]] = Field(
        default_factory=list,
        max_length=MAX_RETURNED,
        json_schema_extra={"uniqueItems": True},
        description="each license once",
    )


class LicenseTakenBack(BaseModel):
    license_id: str
    line_id: str
    state_before: str
    state: str
    outcome: Literal["withdrawn", "suspended", "refused"]
    code: str | None = Field(description="why it was refused (ILLEGAL_TRANSITION)")
    detail: str | None


class ReturnOut(BaseModel):
    order_id: str
    return_id: str | None = Field(description="null for a cancellation")
    cancellation: bool
    replayed: bool = Field(description="true: this return was known, and is answered again")
    licenses: list[LicenseTakenBack]


@router.post(
    "/orders/{order_id}/actions/cancel",
    response_model=ReturnOut,
    responses={409: {"description": "cancelled before with another 'activated'"}},
)
def cancel_order(
    order_id: str, body: Cancellation, ctx: Context = Depends(require("orders:write"))
) -> ReturnOut:
    """Cancel the order: every license not taken back yet is withdrawn (activated
    ones withdrawn or suspended, as ``activated`` says), each reported with its
    outcome; the order then takes no new lines (``ORDER_CANCELLED``). Sent again, the
    same answer with ``replayed: true``."""
    return ctx.write(lambda s: _out(returns.cancel_order(s, ctx.actor, order_id, body.activated)))


@router.post(
    "/orders/{order_id}/actions/return",
    response_model=ReturnOut,
    responses={409: {"description": "RETURN_CONFLICT, RETURN_EXCEEDS_LINE, ORDER_CANCELLED"}},
)
def return_licenses(
    order_id: str, body: ReturnIn, ctx: Context = Depends(require("orders:write"))
) -> ReturnOut:
    """Take back some of the order's licenses: ``quantity`` of a line (those not
    activated first), or licenses by id. The state machine's refusals are reported per
    license (``outcome: refused``). Idempotent by ``return_id``: sent again, the same
    answer with ``replayed: true``; the same id with other content is refused (409
    ``RETURN_CONFLICT``), as is a quantity above what the line has left
    (``RETURN_EXCEEDS_LINE``). Nothing changes when the return is refused."""
    request = returns.ReturnRequest(
        return_id=body.return_id,
        activated=body.activated,
        lines=[returns.ReturnLine(x.line_id, x.quantity) for x in body.lines],
        license_ids=body.license_ids,
    )
    return ctx.write(lambda s: _out(returns.return_licenses(s, ctx.actor, order_id, request)))


def _out(answer: returns.ReturnAnswer) -> ReturnOut:
    return ReturnOut.model_validate(answer, from_attributes=True)
