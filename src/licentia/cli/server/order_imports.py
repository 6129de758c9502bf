"""Orders of an import placed on this machine's database: the bulk use case the API's
``POST /orders/bulk`` runs, one unit of work per order, acting as the operator on the
vendor. ``licentia.cli.server.imports`` imports this only when no ``--server`` is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from licentia.cli.server.runtime import Runtime
from licentia.domain.actors import operator
from licentia.server.db.engine import run_write
from licentia.server.orders import bulk
from licentia.server.orders.services import LineRequest
from licentia.server.tenancy.services import get_vendor_by_slug


def place(
    vendor: str, bodies: list[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]
) -> None:
    """Place the orders (as the bulk endpoint takes them, within its limits) for the
    vendor with slug ``vendor``; ``on_result`` hears each order's result, shaped as
    the endpoint's (``status``, ``order``, ``problem``). Raises NotFoundError (vendor),
    ConfigurationError (master key, database)."""
    runtime = Runtime.load()
    runtime.check_ready()
    with runtime.db.read() as session:
        vendor_id = get_vendor_by_slug(session, vendor).id
    orders = [_order(body) for body in bodies]
    bulk.place_orders(
        lambda work: run_write(runtime.db, work),
        operator(vendor_id),
        runtime.master,
        orders,
        on_result=lambda result: on_result(_item(result)),
    )


def _order(body: dict[str, Any]) -> bulk.BulkOrder:
    customer = body.get("customer")
    return bulk.BulkOrder(
        external_order_id=body["external_order_id"],
        lines=[LineRequest(x["sku"], x["quantity"], x["line_id"]) for x in body["lines"]],
        customer=None
        if customer is None
        else bulk.CustomerRef(
            customer["external_id"], {k: v for k, v in customer.items() if k != "external_id"}
        ),
    )


def _item(result: bulk.BulkResult) -> dict[str, Any]:
    if result.error is not None:
        problem = {"code": result.error.code, "detail": result.error.message}
        return {"status": result.outcome.value, "order": None, "problem": problem}
    assert result.placed is not None
    placed = result.placed
    order = {
        "id": placed.order.id,
        "ticket_id": placed.order.ticket_id,
        "added_lines": placed.added_lines,
    }
    return {"status": result.outcome.value, "order": order, "problem": None}
