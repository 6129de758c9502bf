"""Customers, orders from the vendor's ERP, and the tickets they produce.

An order is idempotent by its external order id: sending it again returns the same
order and ticket; sending it with new lines adds their licenses to the same ticket
(lines are identified by the ERP's ``line_id``, or their position when it sends none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from licentia.domain.tickets import generate_ticket_code, normalize_ticket_code
from licentia.server.audit.services import record
from licentia.server.catalog.models import Template
from licentia.server.catalog.services import template_by_sku
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.services import issue_licenses
from licentia.server.orders.models import Customer, Order, OrderLine, Ticket

_LOOKUP, _SEALED = "ticket-lookup", "ticket-code"
MAX_QUANTITY = 1000


# --- customers -------------------------------------------------------------------------


def create_customer(
    session: Session, actor: Actor, *, name: str, external_id: str | None, email: str | None
) -> Customer:
    """Raises AlreadyExistsError if ``external_id`` is taken for this vendor."""
    vendor_id = _vendor(actor)
    if external_id is not None and _customer_by_external_id(session, vendor_id, external_id):
        raise AlreadyExistsError(f"customer {external_id!r} already exists", field="external_id")
    customer = Customer(vendor_id=vendor_id, name=name, external_id=external_id, email=email)
    session.add(customer)
    session.flush()
    record(
        session, actor, "customer.created", "customer", customer.id, after=customer_view(customer)
    )
    return customer


def update_customer(
    session: Session, actor: Actor, customer_id: str, changes: dict[str, Any]
) -> Customer:
    customer = get_customer(session, actor, customer_id)
    before = customer_view(customer)
    new_external = changes.get("external_id")
    if (
        new_external is not None
        and new_external != customer.external_id
        and _customer_by_external_id(session, customer.vendor_id, new_external)
    ):
        raise AlreadyExistsError(f"customer {new_external!r} already exists", field="external_id")
    for name in ("name", "external_id", "email"):
        if name in changes:
            setattr(customer, name, changes[name])
    session.flush()
    record(
        session,
        actor,
        "customer.updated",
        "customer",
        customer.id,
        before=before,
        after=customer_view(customer),
    )
    return customer


def get_customer(session: Session, actor: Actor, customer_id: str) -> Customer:
    customer = session.scalar(
        select(Customer).where(Customer.id == customer_id, Customer.vendor_id == _vendor(actor))
    )
    if customer is None:
        raise NotFoundError("customer", customer_id)
    return customer


def customers_query(actor: Actor, external_id: str | None = None) -> Select[Customer]:
    query = select(Customer).where(Customer.vendor_id == _vendor(actor))
    return query if external_id is None else query.where(Customer.external_id == external_id)


def customer_view(customer: Customer) -> dict[str, Any]:
    return {"name": customer.name, "external_id": customer.external_id, "email": customer.email}


def _customer_by_external_id(session: Session, vendor_id: str, external_id: str) -> Customer | None:
    return session.scalar(
        select(Customer).where(Customer.vendor_id == vendor_id, Customer.external_id == external_id)
    )


# --- orders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int
    line_id: str | None = None


@dataclass(frozen=True)
class OrderResult:
    order: Order
    created: bool
    added_lines: list[str]


def place_order(
    session: Session,
    actor: Actor,
    master: MasterKey,
    *,
    external_order_id: str,
    customer_id: str | None,
    lines: list[LineRequest],
) -> OrderResult:
    """Create the order with a ticket holding one license per ordered unit, or, if the
    external order id is known, add the lines it does not have yet.

    Raises ValidationError (unknown SKU, bad quantity, duplicate line ids),
    NotFoundError (customer), ConflictError (``ORDER_LINE_CONFLICT``: a known line id
    with another SKU or quantity; ``ORDER_CUSTOMER_CONFLICT``: another customer).
    """
    vendor_id = _vendor(actor)
    resolved = _resolve_lines(session, vendor_id, lines)
    if customer_id is not None:
        get_customer(session, actor, customer_id)
    order = session.scalar(
        select(Order)
        .where(Order.vendor_id == vendor_id, Order.external_order_id == external_order_id)
        .with_for_update()
    )
    if order is None:
        order = _new_order(session, actor, master, external_order_id, customer_id)
        created = True
    else:
        if customer_id is not None and order.customer_id != customer_id:
            raise ConflictError(
                "this order belongs to another customer",
                code="ORDER_CUSTOMER_CONFLICT",
                field="customer_id",
            )
        created = False
    added = _add_new_lines(session, actor, order, resolved)
    return OrderResult(order, created, added)


def _resolve_lines(
    session: Session, vendor_id: str, lines: list[LineRequest]
) -> list[tuple[str, LineRequest, Template]]:
    if not lines:
        raise ValidationError("an order needs at least one line", field="lines")
    resolved, seen = [], set()
    for index, line in enumerate(lines):
        line_id = line.line_id or str(index + 1)
        if line_id in seen:
            raise ValidationError(
                f"line id {line_id!r} appears twice", field=f"lines[{index}].line_id"
            )
        seen.add(line_id)
        if not 1 <= line.quantity <= MAX_QUANTITY:
            raise ValidationError(
                f"quantity must be 1..{MAX_QUANTITY}", field=f"lines[{index}].quantity"
            )
        template = template_by_sku(session, vendor_id, line.sku)
        if template is None:
            raise ValidationError(
                f"no template with SKU {line.sku!r}",
                field=f"lines[{index}].sku",
                code="UNKNOWN_SKU",
            )
        resolved.append((line_id, line, template))
    return resolved


def _new_order(
    session: Session,
    actor: Actor,
    master: MasterKey,
    external_order_id: str,
    customer_id: str | None,
) -> Order:
    ticket = _new_ticket(session, actor, master, customer_id)
    order = Order(
        vendor_id=ticket.vendor_id,
        external_order_id=external_order_id,
        customer_id=customer_id,
        ticket_id=ticket.id,
        lines=[],  # known to be empty: spares loading the collection
    )
    session.add(order)
    session.flush()
    record(
        session,
        actor,
        "order.created",
        "order",
        order.id,
        after={
            "external_order_id": external_order_id,
            "customer_id": customer_id,
            "ticket_id": ticket.id,
        },
    )
    return order


def _add_new_lines(
    session: Session, actor: Actor, order: Order, resolved: list[tuple[str, LineRequest, Template]]
) -> list[str]:
    known = {line.line_id: line for line in order.lines}
    added = []
    for index, (line_id, request, template) in enumerate(resolved):
        if line_id in known:
            existing = known[line_id]
            if (existing.sku, existing.quantity) != (request.sku, request.quantity):
                raise ConflictError(
                    f"line {line_id!r} was ordered as {existing.quantity} x {existing.sku}",
                    code="ORDER_LINE_CONFLICT",
                    field=f"lines[{index}]",
                )
            continue
        line = OrderLine(
            line_id=line_id, sku=request.sku, template_id=template.id, quantity=request.quantity
        )
        order.lines.append(line)
        session.flush()
        issue_licenses(
            session,
            actor,
            template,
            ticket_id=order.ticket_id,
            order_line_id=line.id,
            customer_id=order.customer_id,
            quantity=request.quantity,
        )
        record(
            session,
            actor,
            "order.line_added",
            "order",
            order.id,
            after={"line_id": line_id, "sku": request.sku, "quantity": request.quantity},
        )
        added.append(line_id)
    return added


def get_order(session: Session, actor: Actor, order_id: str) -> Order:
    order = session.scalar(
        select(Order).where(Order.id == order_id, Order.vendor_id == _vendor(actor))
    )
    if order is None:
        raise NotFoundError("order", order_id)
    return order


def orders_query(actor: Actor, external_order_id: str | None = None) -> Select[Order]:
    query = select(Order).where(Order.vendor_id == _vendor(actor))
    if external_order_id is not None:
        query = query.where(Order.external_order_id == external_order_id)
    return query


# --- tickets ---------------------------------------------------------------------------


def _new_ticket(
    session: Session, actor: Actor, master: MasterKey, customer_id: str | None
) -> Ticket:
    code = generate_ticket_code()
    ticket = Ticket(
        vendor_id=_vendor(actor),
        customer_id=customer_id,
        code_hash=master.keyed_hash(code, purpose=_LOOKUP),
        code_encrypted=master.encrypt(code.encode(), purpose=_SEALED),
    )
    session.add(ticket)
    session.flush()
    record(
        session, actor, "ticket.created", "ticket", ticket.id, after={"customer_id": customer_id}
    )
    return ticket


def ticket_code(ticket: Ticket, master: MasterKey) -> str:
    """The ticket's code, decrypted (for showing or re-sending it)."""
    return master.decrypt(ticket.code_encrypted, purpose=_SEALED).decode()


def reveal_ticket_code(session: Session, actor: Actor, master: MasterKey, ticket_id: str) -> str:
    """The code of one ticket; every reveal is audited."""
    ticket = get_ticket(session, actor, ticket_id)
    record(session, actor, "ticket.code_revealed", "ticket", ticket.id)
    return ticket_code(ticket, master)


def find_ticket(session: Session, vendor_id: str, master: MasterKey, code: str) -> Ticket:
    """The ticket with this code. Raises ValidationError (``TICKET_CODE_INVALID``) for a
    typo and NotFoundError (``TICKET_NOT_FOUND``) for a well-formed unknown code."""
    digest = master.keyed_hash(normalize_ticket_code(code), purpose=_LOOKUP)
    ticket = session.scalar(
        select(Ticket).where(Ticket.vendor_id == vendor_id, Ticket.code_hash == digest)
    )
    if ticket is None:
        raise NotFoundError("ticket", "with this code", code="TICKET_NOT_FOUND")
    return ticket


def get_ticket(session: Session, actor: Actor, ticket_id: str) -> Ticket:
    ticket = session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.vendor_id == _vendor(actor))
    )
    if ticket is None:
        raise NotFoundError("ticket", ticket_id)
    return ticket


def tickets_query(actor: Actor, customer_id: str | None = None) -> Select[Ticket]:
    query = select(Ticket).where(Ticket.vendor_id == _vendor(actor))
    return query if customer_id is None else query.where(Ticket.customer_id == customer_id)


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "order calls need a vendor-scoped actor"
    return actor.vendor_id
