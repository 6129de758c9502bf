"""Console pages for orders: the list (the ERP's orders with their lines and status:
``processing`` while a large order's licenses are issued in the background,
``completed``, or ``cancelled``/``returned`` once the ERP took licenses back) and an order
entered by hand, placed by the same use case as ``POST /api/v1/orders``, so it is
idempotent by its external order id (the form proposes a fresh one, and sending the
form twice gives the one ticket)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.catalog import services as catalog
from licentia.server.catalog.models import Template
from licentia.server.db.pagination import Page, paginate
from licentia.server.orders import returns
from licentia.server.orders import services as orders
from licentia.server.orders.models import Customer, Order
from licentia.server.web import units
from licentia.server.web.console.staff import problems_of, query_string, render, staff_of, to_login
from licentia.server.web.errors import Problems
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
PAGE_SIZE = 50
LINE_ROWS = 5
CHOICES = 200  # customers and SKUs offered in the order form's lists
_LINE_FIELD = re.compile(r"^lines\[(\d+)\](.*)$")


@router.get("/orders")
def list_orders(request: Request, external_order_id: str = "", cursor: str = "") -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("orders:read")

    def work(session: units.DbSession) -> tuple[Page[Order], dict[str, str]]:
        query = orders.orders_query(actor, external_order_id.strip() or None)
        page = paginate(session, query, Order.id, cursor=cursor or None, limit=PAGE_SIZE)
        return page, returns.taken_back(session, actor, [order.id for order in page.items])

    page, taken_back = units.read(request, work)
    filters = {"external_order_id": external_order_id}
    return render(
        request,
        actor,
        "console/orders.html",
        page=page,
        statuses={order.id: taken_back.get(order.id, order.status) for order in page.items},
        filters=filters,
        next_link=query_string(filters, cursor=page.next_cursor) if page.next_cursor else None,
    )


@router.get("/orders/new")
def new_order(request: Request, customer_id: str = "") -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("orders:write")
    values = {"external_order_id": f"CONSOLE-{secrets.token_hex(5).upper()}"}
    values["customer_id"] = customer_id
    return _form(request, actor, values, Problems())


@dataclass(frozen=True)
class _Lines:
    lines: list[orders.LineRequest]
    rows: list[int]  # the form row of each line (blank rows are left out)


def _lines(form: dict[str, str]) -> _Lines:
    """The filled rows of the form as order lines. ValidationError names the row's
    quantity when it is not a whole number."""
    lines, rows = [], []
    for row in range(LINE_ROWS):
        sku = form.get(f"lines[{row}].sku", "").strip()
        if not sku:
            continue
        raw = form.get(f"lines[{row}].quantity", "").strip() or "1"
        try:
            quantity = int(raw)
        except ValueError:
            raise ValidationError(
                f"{raw!r} is not a whole number", field=f"lines[{row}].quantity"
            ) from None
        lines.append(orders.LineRequest(sku=sku, quantity=quantity))
        rows.append(row)
    return _Lines(lines, rows)


def _row_field(rows: list[int]) -> Callable[[str], str]:
    """The service numbers the lines it received; the form, its rows."""

    def field(name: str) -> str:
        found = _LINE_FIELD.match(name)
        if found is None or int(found.group(1)) >= len(rows):
            return name
        suffix = found.group(2) or ".sku"
        return f"lines[{rows[int(found.group(1))]}]{suffix}"

    return field


@router.post("/orders/new")
async def place_order(request: Request) -> Response:
    form = {name: value for name, value in (await request.form()).items() if isinstance(value, str)}
    return await run_in_threadpool(_place_order, request, form)


def _place_order(request: Request, form: dict[str, str]) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("orders:write")
    master = units.backend_of(request).master
    rows: list[int] = []
    try:
        parsed = _lines(form)
        rows = parsed.rows
        placed = units.write(
            request,
            lambda s: orders.place_order(
                s,
                actor,
                master,
                external_order_id=form.get("external_order_id", "").strip(),
                customer_id=form.get("customer_id") or None,
                lines=parsed.lines,
            ),
        )
    except LicentiaError as error:
        problems = problems_of(request, error, _row_field(rows))
        return _form(request, actor, form, problems, status_code=422)
    outcome = "created" if placed.created else "known"
    return RedirectResponse(
        f"/console/tickets/{placed.order.ticket_id}?order={outcome}", status_code=303
    )


def _choices(session: units.DbSession, actor: Actor) -> dict[str, list[tuple[str, str]]]:
    customers = paginate(
        session, orders.customers_query(actor), Customer.id, cursor=None, limit=CHOICES
    )
    templates = paginate(
        session, catalog.templates_query(actor), Template.id, cursor=None, limit=CHOICES
    )
    return {
        "customers": [
            (c.id, c.name + (f" ({c.external_id})" if c.external_id else ""))
            for c in customers.items
        ],
        "skus": [(t.sku, f"{t.sku}: {t.name}") for t in templates.items],
    }


def _form(
    request: Request,
    actor: Actor,
    values: dict[str, str],
    problems: Problems,
    *,
    status_code: int = 200,
) -> Response:
    choices = units.read(request, lambda s: _choices(s, actor))
    return render(
        request,
        actor,
        "console/order_form.html",
        status_code=status_code,
        values=values,
        problems=problems,
        rows=range(LINE_ROWS),
        **choices,
    )
