"""Customers, orders and tickets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from licentia.server.api.context import Context, require
from licentia.server.api.schemas import (
    ID,
    IDEMPOTENT,
    NAME,
    Code,
    Email,
    Identifier,
    LineId,
    Name,
    Out,
    PageOut,
    PageParams,
    TypedTicketCode,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.pagination import paginate
from licentia.server.orders import services as orders
from licentia.server.orders.models import Customer, Order, Ticket

router = APIRouter(tags=["orders"], route_class=ThreadedRoute)


class CustomerCreate(BaseModel):
    name: Name
    external_id: Identifier | None = None
    email: Email | None = None


class CustomerUpdate(BaseModel):
    # A customer always has a name: it may be left out, not set to null (the service
    # refuses null), so the document does not offer null.
    name: Name | SkipJsonSchema[None] = None
    external_id: Identifier | None = Field(default=None, description="null: removed")
    email: Email | None = None


class CustomerOut(Out):
    id: str
    name: str
    external_id: str | None
    email: str | None
    created_at: datetime


class OrderLineIn(BaseModel):
    sku: Code
    quantity: int = Field(default=1, ge=1, le=orders.MAX_QUANTITY)
    line_id: LineId | None = Field(
        default=None,
        description="the ERP's position id; defaults to the 1-based index",
    )


class OrderCreate(BaseModel):
    external_order_id: Identifier
    customer_id: str | None = Field(default=None, max_length=ID)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=500)


class OrderLineOut(Out):
    line_id: str
    sku: str
    quantity: int


class OrderOut(Out):
    id: str
    external_order_id: str
    customer_id: str | None
    ticket_id: str
    lines: list[OrderLineOut]
    status: Literal["processing", "completed"] = Field(
        description="`processing` while a large order's licenses are issued in the"
        " background (its ticket gains them batch by batch), then `completed`"
    )
    created_at: datetime


class OrderPlaced(OrderOut):
    ticket_code: str
    created: bool = Field(description="false when the external order id was already known")
    added_lines: list[str]


class TicketOut(Out):
    id: str
    customer_id: str | None
    license_ids: list[str]
    created_at: datetime


class TicketCode(BaseModel):
    id: str
    code: str


class TicketLookup(BaseModel):
    code: TypedTicketCode


def order_out(order: Order) -> OrderOut:
    return OrderOut.model_validate(order)


def ticket_out(ticket: orders.TicketView) -> TicketOut:
    return TicketOut.model_validate(ticket)


def order_placed(result: orders.OrderResult) -> OrderPlaced:
    return OrderPlaced.model_validate(
        {
            **vars(result.order),
            "created": result.created,
            "added_lines": result.added_lines,
            "ticket_code": result.ticket_code,
        }
    )


@router.post("/customers", status_code=201, response_model=CustomerOut, openapi_extra=IDEMPOTENT)
def create_customer(
    body: CustomerCreate, request: Request, ctx: Context = Depends(require("customers:write"))
) -> JSONResponse:
    return ctx.create(
        request,
        body,
        lambda s: CustomerOut.model_validate(
            orders.create_customer(
                s, ctx.actor, name=body.name, external_id=body.external_id, email=body.email
            )
        ),
    )


@router.get("/customers", response_model=PageOut[CustomerOut])
def list_customers(
    external_id: str | None = Query(None, max_length=NAME),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("customers:read")),
) -> PageOut[CustomerOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                orders.customers_query(ctx.actor, external_id),
                Customer.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            CustomerOut.model_validate,
        )
    )


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(
    customer_id: str, ctx: Context = Depends(require("customers:read"))
) -> CustomerOut:
    return ctx.read(
        lambda s: CustomerOut.model_validate(orders.get_customer(s, ctx.actor, customer_id))
    )


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(
    customer_id: str, body: CustomerUpdate, ctx: Context = Depends(require("customers:write"))
) -> CustomerOut:
    changes = body.model_dump(exclude_unset=True)
    return ctx.write(
        lambda s: CustomerOut.model_validate(
            orders.update_customer(s, ctx.actor, customer_id, changes)
        )
    )


@router.post(
    "/orders",
    status_code=201,
    response_model=OrderPlaced,
    responses={
        200: {"model": OrderPlaced, "description": "a known order, replayed or extended"},
        202: {
            "model": OrderPlaced,
            "description": "a large order accepted: its licenses are issued in the"
            " background (`status` `processing`); poll the order at `Location`",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
    },
    openapi_extra=IDEMPOTENT,
)
def place_order(
    body: OrderCreate, request: Request, ctx: Context = Depends(require("orders:write"))
) -> JSONResponse:
    """Idempotent by ``external_order_id``: 201 when created, 200 when it was known
    (new ``line_id``s are added to the same ticket). An order still `processing` is
    answered 202 with its `Location`: one adding more than
    `LICENTIA_ORDER_SYNCHRONOUS_LICENSES` licenses (1,000) has them issued in the
    background, in batches, and is then `completed`."""
    lines = [
        orders.LineRequest(sku=x.sku, quantity=x.quantity, line_id=x.line_id) for x in body.lines
    ]
    synchronous = ctx.services.settings.order_synchronous_licenses
    answer = ctx.create(
        request,
        body,
        lambda s: order_placed(
            orders.place_order(
                s,
                ctx.actor,
                ctx.master,
                external_order_id=body.external_order_id,
                customer_id=body.customer_id,
                lines=lines,
                synchronous_licenses=synchronous,
            )
        ),
        status_for=_placed_status,
    )
    if answer.status_code == 202:  # the same on a replay: it is made from the stored body
        answer.headers["Location"] = f"/api/v1/orders/{json.loads(bytes(answer.body))['id']}"
    return answer


def _placed_status(placed: OrderPlaced) -> int:
    if placed.status == "processing":
        return 202
    return 201 if placed.created else 200


@router.get("/orders", response_model=PageOut[OrderOut])
def list_orders(
    external_order_id: str | None = Query(None, max_length=NAME),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("orders:read")),
) -> PageOut[OrderOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                orders.orders_query(ctx.actor, external_order_id),
                Order.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            order_out,
        )
    )


@router.get("/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: str, ctx: Context = Depends(require("orders:read"))) -> OrderOut:
    return ctx.read(lambda s: order_out(orders.get_order(s, ctx.actor, order_id)))


@router.get("/tickets", response_model=PageOut[TicketOut])
def list_tickets(
    customer_id: str | None = Query(None, max_length=ID),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("orders:read")),
) -> PageOut[TicketOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                orders.tickets_query(ctx.actor, customer_id),
                Ticket.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            lambda t: ticket_out(orders.ticket_view(s, t)),
        )
    )


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
def get_ticket(ticket_id: str, ctx: Context = Depends(require("orders:read"))) -> TicketOut:
    return ctx.read(
        lambda s: ticket_out(orders.ticket_view(s, orders.get_ticket(s, ctx.actor, ticket_id)))
    )


@router.post("/tickets/{ticket_id}/code", response_model=TicketCode)
def reveal_ticket_code(
    ticket_id: str, ctx: Context = Depends(require("orders:write"))
) -> TicketCode:
    """Show the code again (to re-send it); every reveal is audited, hence POST."""
    return ctx.write(
        lambda s: TicketCode(
            id=ticket_id, code=orders.reveal_ticket_code(s, ctx.actor, ctx.master, ticket_id)
        )
    )


@router.post(
    "/tickets/lookup",
    response_model=TicketOut,
    responses={404: {"description": "TICKET_NOT_FOUND: a well-formed code no ticket has"}},
)
def lookup_ticket(body: TicketLookup, ctx: Context = Depends(require("orders:read"))) -> TicketOut:
    """Find a ticket by the code a customer reads out; a typo is caught by its check symbol."""
    return ctx.read(
        lambda s: ticket_out(
            orders.ticket_view(s, orders.find_ticket(s, ctx.vendor_id, ctx.master, body.code))
        )
    )
