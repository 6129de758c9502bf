"""Customers, orders from the vendor's ERP, and the tickets they produce.

An order is idempotent by its external order id: sending it again returns the same
order and ticket; sending it with new lines adds their licenses to the same ticket
(lines are identified by the ERP's ``line_id``, or their position when it sends none).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select, true
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.emails import check_address
from licentia.domain.errors import (
    AlreadyExistsError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from licentia.domain.identifiers import clean_identifier
from licentia.domain.ids import new_id
from licentia.domain.templates import StoredOptions, Validity, end_date_passed
from licentia.formats.tickets import TicketCodeError, generate_ticket_code, normalize_ticket_code
from licentia.server.audit.services import record
from licentia.server.catalog.services import (
    TEMPLATES_BY_SKU,
    TemplateRef,
    check_name,
    template_ref,
)
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.licenses.services import count_issued, new_license_rows, record_issued
from licentia.server.orders._rows import Batch, write_rows
from licentia.server.orders.issuing import start_issuing
from licentia.server.orders.models import (
    CANCELLATION,
    Customer,
    Order,
    OrderLine,
    OrderReturn,
    Ticket,
)
from licentia.server.tenancy.models import Vendor

_LOOKUP, _SEALED = "ticket-lookup", "ticket-code"
MAX_QUANTITY = 20_000  # licenses of one order line
# Licenses of one order, all its lines together (those added later too).
MAX_LICENSES_PER_ORDER = 20_000
# A request adding up to this many licenses is written in its own transaction, which
# on SQLite holds the database's write lock and on PostgreSQL the vendor's audit chain
# for its events (docs/benchmarks.md has for how long). A larger one writes its order
# and lines, answers at once with the order "processing", and leaves the licenses to
# a job that issues them ISSUE_BATCH at a time, each batch its own short transaction
# (``orders.issuing``).
SYNCHRONOUS_LICENSES = 1000
PROCESSING, COMPLETED = "processing", "completed"


# --- customers -------------------------------------------------------------------------


def create_customer(
    session: Session, actor: Actor, *, name: str, external_id: str | None, email: str | None
) -> Customer:
    """Raises AlreadyExistsError if ``external_id`` is taken for this vendor,
    IdentifierInvalidError if it holds an invisible or control character,
    ValidationError (``EMAIL_INVALID``) if ``email`` is no e-mail address."""
    vendor_id = _vendor(actor)
    if external_id is not None:
        external_id = clean_identifier(external_id, field="external_id")
    check_name(name)
    if email is not None:
        email = check_address(email, field="email")
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
    if "name" in changes and changes["name"] is None:
        # The other fields may be cleared with null; a customer always has a name.
        raise ValidationError("a customer's name cannot be removed", field="name")
    if changes.get("external_id") is not None:
        changes = {
            **changes,
            "external_id": clean_identifier(changes["external_id"], field="external_id"),
        }
    if "name" in changes:
        check_name(changes["name"])
    if changes.get("email") is not None:
        changes = {**changes, "email": check_address(changes["email"], field="email")}
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


def customers_query(
    actor: Actor, external_id: str | None = None, *, search: str | None = None
) -> Select[Customer]:
    """The vendor's customers; ``search`` finds a part of the name, e-mail or external
    id, whatever its case."""
    query = select(Customer).where(Customer.vendor_id == _vendor(actor))
    if external_id is not None:
        query = query.where(Customer.external_id == unicodedata.normalize("NFC", external_id))
    if search:
        pattern = f"%{_escape_like(search.lower())}%"
        query = query.where(
            func.lower(Customer.name).like(pattern, escape="\\")
            | func.lower(Customer.email).like(pattern, escape="\\")
            | func.lower(Customer.external_id).like(pattern, escape="\\")
        )
    return query


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
class PlacedLine:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class PlacedOrder:
    """The order as placed: its lines are the known ones (by ``line_id``), then the
    ones this request added, in the order it sent them."""

    id: str
    external_order_id: str
    customer_id: str | None
    ticket_id: str
    created_at: datetime
    lines: list[PlacedLine]
    status: str = COMPLETED


@dataclass(frozen=True)
class OrderResult:
    order: PlacedOrder
    created: bool
    added_lines: list[str]
    ticket_code: str


def place_order(
    session: Session,
    actor: Actor,
    master: MasterKey,
    *,
    external_order_id: str,
    customer_id: str | None,
    lines: list[LineRequest],
    synchronous_licenses: int = SYNCHRONOUS_LICENSES,
) -> OrderResult:
    """Create the order with a ticket holding one license per ordered unit, or, if the
    external order id is known, add the lines it does not have yet. When the new lines
    hold more than ``synchronous_licenses`` licenses, the order is "processing": its
    lines are written, and a job (``orders.issuing``) issues their licenses in batches
    and then marks it "completed".

    Raises ValidationError (unknown SKU, bad quantity, duplicate line ids, a new line
    of a template whose fixed end date has passed: ``END_DATE_PASSED``; more than
    MAX_LICENSES_PER_ORDER licenses in the order: ``ORDER_TOO_LARGE``),
    NotFoundError (customer), ConflictError (``ORDER_LINE_CONFLICT``: a known line id
    with another SKU or quantity; ``ORDER_CUSTOMER_CONFLICT``: another customer;
    ``ORDER_CANCELLED``: new lines for an order the ERP cancelled).

    Rows are written with Core INSERTs and ids made here: nothing is read back. Two
    requests creating one order race on its unique external id; the loser's
    IntegrityError makes the unit of work retry and find the winner's order.
    """
    vendor_id = _vendor(actor)
    if not lines:
        raise ValidationError("an order needs at least one line", field="lines")
    external_order_id = clean_identifier(external_order_id, field="external_order_id")
    lines = [_clean_line_id(line, index) for index, line in enumerate(lines)]
    templates, known = _read_for_order(session, vendor_id, external_order_id, lines)
    resolved = _resolve_lines(lines, templates)
    if customer_id is not None:
        get_customer(session, actor, customer_id)
    writes: list[Batch] = []
    later = _adding(known, resolved) > synchronous_licenses
    if known is None:
        code = generate_ticket_code()
        status = PROCESSING if later else COMPLETED
        order = _new_order(
            session, actor, master, code, external_order_id, customer_id, writes, status
        )
        created = True
    else:
        order, code = known[0], ticket_code_of(known[1], master)
        if customer_id is not None and order.customer_id != customer_id:
            raise ConflictError(
                "this order belongs to another customer",
                code="ORDER_CUSTOMER_CONFLICT",
                field="customer_id",
            )
        created = False
    added = _add_new_lines(session, actor, order, resolved, writes, with_licenses=not later)
    write_rows(session.connection(), writes)
    count_issued(session, [row for entity, rows in writes if entity is License for row in rows])
    if later and added:
        start_issuing(session, actor, order.id)
        order = replace(order, status=PROCESSING)
    return OrderResult(order, created, added, code)


def _adding(known: tuple[PlacedOrder, bytes] | None, resolved: list[_Resolved]) -> int:
    """How many licenses the lines that ``known`` lacks would add."""
    have = set() if known is None else {line.line_id for line in known[0].lines}
    return sum(request.quantity for line_id, request, _ in resolved if line_id not in have)


_Resolved = tuple[str, LineRequest, TemplateRef]


def _clean_line_id(line: LineRequest, index: int) -> LineRequest:
    if line.line_id is None:
        return line
    return replace(line, line_id=clean_identifier(line.line_id, field=f"lines[{index}].line_id"))


def _resolve_lines(lines: list[LineRequest], templates: dict[str, TemplateRef]) -> list[_Resolved]:
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
        template = templates.get(line.sku)
        if template is None:
            raise ValidationError(
                f"no template with SKU {line.sku!r}",
                field=f"lines[{index}].sku",
                code="UNKNOWN_SKU",
            )
        resolved.append((line_id, line, template))
    return resolved


def _read_for_order(
    session: Session, vendor_id: str, external_order_id: str, lines: list[LineRequest]
) -> tuple[dict[str, TemplateRef], tuple[PlacedOrder, bytes] | None]:
    """The templates of the ordered SKUs, and the known order (with its lines and its
    ticket's sealed code) or None, in one query. The order row stays locked until the
    transaction ends, so concurrent extensions of one order queue. When no SKU is
    known the order is not read: the caller refuses such an order anyway."""
    session.flush()  # Core statements do not autoflush: the caller's pending rows first
    connection = session.connection()
    params = {
        "vendor_id": vendor_id,
        "skus": sorted({line.sku for line in lines}),
        "external_order_id": external_order_id,
    }
    rows = connection.execute(_TEMPLATES_AND_ORDER, params).all()
    templates = {row.sku: template_ref(row) for row in rows}
    if not rows or rows[0].order_id is None:
        return templates, None
    row = rows[0]
    known = connection.execute(_KNOWN_LINES, {"order_id": row.order_id})
    order = PlacedOrder(
        id=row.order_id,
        external_order_id=external_order_id,
        customer_id=row.order_customer_id,
        ticket_id=row.order_ticket_id,
        created_at=row.order_created_at,
        lines=[PlacedLine(*line) for line in known],
        status=row.order_status,
    )
    return templates, (order, row.code_encrypted)


# Statements built once (see catalog.services.TEMPLATES_BY_SKU for why).
_LOCKED_ORDER = (
    select(
        Order.id.label("order_id"),
        Order.customer_id.label("order_customer_id"),
        Order.ticket_id.label("order_ticket_id"),
        Order.created_at.label("order_created_at"),
        Order.status.label("order_status"),
        Ticket.code_encrypted,
    )
    .join(Ticket, Ticket.id == Order.ticket_id)
    .where(
        Order.vendor_id == bindparam("vendor_id"),
        Order.external_order_id == bindparam("external_order_id"),
    )
    .with_for_update(of=Order)
    .cte("locked_order")
)
_TEMPLATES_AND_ORDER = TEMPLATES_BY_SKU.outerjoin(_LOCKED_ORDER, true()).add_columns(
    *_LOCKED_ORDER.c
)
_KNOWN_LINES = (
    select(OrderLine.line_id, OrderLine.sku, OrderLine.quantity)
    .where(OrderLine.order_id == bindparam("order_id"))
    .order_by(OrderLine.line_id)
)


def _new_order(
    session: Session,
    actor: Actor,
    master: MasterKey,
    code: str,
    external_order_id: str,
    customer_id: str | None,
    writes: list[Batch],
    status: str,
) -> PlacedOrder:
    """The new order and its ticket, their rows queued on ``writes``."""
    ticket_id = _new_ticket(session, actor, master, code, customer_id, writes)
    order = PlacedOrder(
        id=new_id(),
        external_order_id=external_order_id,
        customer_id=customer_id,
        ticket_id=ticket_id,
        created_at=utcnow(),
        lines=[],
        status=status,
    )
    row = {
        "id": order.id,
        "vendor_id": _vendor(actor),
        "external_order_id": external_order_id,
        "customer_id": customer_id,
        "ticket_id": ticket_id,
        "status": status,
        "created_at": order.created_at,
    }
    writes.append((Order, [row]))
    record(
        session,
        actor,
        "order.created",
        "order",
        order.id,
        after={
            "external_order_id": external_order_id,
            "customer_id": customer_id,
            "ticket_id": ticket_id,
        },
    )
    return order


def _add_new_lines(
    session: Session,
    actor: Actor,
    order: PlacedOrder,
    resolved: list[_Resolved],
    writes: list[Batch],
    *,
    with_licenses: bool,
) -> list[str]:
    """Queue the lines ``order`` lacks and (``with_licenses``) their licenses on
    ``writes``; appends them to ``order.lines``. Raises ConflictError for a known line
    id ordered otherwise, ValidationError ``END_DATE_PASSED`` for a new line of a
    template that has ended."""
    known = {line.line_id: line for line in order.lines}
    new = []
    for index, (line_id, request, template) in enumerate(resolved):
        existing = known.get(line_id)
        if existing is None:
            _check_not_ended(template, index)
            new.append((line_id, request, template))
        elif (existing.sku, existing.quantity) != (request.sku, request.quantity):
            raise ConflictError(
                f"line {line_id!r} was ordered as {existing.quantity} x {existing.sku}",
                code="ORDER_LINE_CONFLICT",
                field=f"lines[{index}]",
            )
    _check_size(order, new)
    if new and order.lines and _cancelled(session, order.id):
        raise ConflictError(
            "this order was cancelled: it takes no new lines", code="ORDER_CANCELLED"
        )
    if new:
        _queue_lines(session, actor, order, new, writes, with_licenses)
    return [line_id for line_id, _, _ in new]


def _cancelled(session: Session, order_id: str) -> bool:
    """Whether the ERP cancelled the order (``returns.cancel_order``): asked only when
    a known order gains lines, never on the path of a new order or a replay."""
    cancellation = select(OrderReturn.id).where(
        OrderReturn.order_id == order_id, OrderReturn.return_id == CANCELLATION
    )
    return session.scalar(cancellation) is not None


def _check_size(order: PlacedOrder, new: list[_Resolved]) -> None:
    """Raises ValidationError ``ORDER_TOO_LARGE`` when the order would hold more than
    MAX_LICENSES_PER_ORDER licenses."""
    known = sum(line.quantity for line in order.lines)
    added = sum(request.quantity for _, request, _ in new)
    if known + added > MAX_LICENSES_PER_ORDER:
        raise ValidationError(
            f"an order holds at most {MAX_LICENSES_PER_ORDER} licenses"
            f" ({known} already, {added} asked for)",
            field="lines",
            code="ORDER_TOO_LARGE",
            limit=MAX_LICENSES_PER_ORDER,
        )


def _check_not_ended(template: TemplateRef, index: int) -> None:
    """A template whose fixed end date has passed since it was made issues nothing."""
    validity = Validity.model_validate(StoredOptions(template.options).validity)
    if end_date_passed(validity, utcnow()):
        raise ValidationError(
            f"template {template.sku!r} ended on {validity.end_date}: its licenses would be"
            " expired when issued",
            field=f"lines[{index}].sku",
            code="END_DATE_PASSED",
        )


def _queue_lines(
    session: Session,
    actor: Actor,
    order: PlacedOrder,
    new: list[_Resolved],
    writes: list[Batch],
    with_licenses: bool,
) -> None:
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "order_id": order.id,
            "line_id": line_id,
            "sku": request.sku,
            "template_id": template.id,
            "quantity": request.quantity,
            "created_at": now,
        }
        for line_id, request, template in new
    ]
    licenses: list[dict[str, Any]] = []
    for row, (line_id, request, template) in zip(rows, new, strict=True):
        if with_licenses:
            issued = new_license_rows(
                template,
                now,
                ticket_id=order.ticket_id,
                order_line_id=row["id"],
                customer_id=order.customer_id,
                quantity=request.quantity,
            )
            record_issued(session, actor, issued, now)
            licenses.extend(issued)
        record(
            session,
            actor,
            "order.line_added",
            "order",
            order.id,
            after={"line_id": line_id, "sku": request.sku, "quantity": request.quantity},
        )
        order.lines.append(PlacedLine(line_id, request.sku, request.quantity))
    writes.extend([(OrderLine, rows), (License, licenses)])


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
        normal = unicodedata.normalize("NFC", external_order_id)
        query = query.where(Order.external_order_id == normal)
    return query


# --- tickets ---------------------------------------------------------------------------


def _new_ticket(
    session: Session,
    actor: Actor,
    master: MasterKey,
    code: str,
    customer_id: str | None,
    writes: list[Batch],
) -> str:
    """Queue a ticket for ``code`` (kept hashed and sealed, never in clear); its id."""
    ticket_id = new_id()
    row = {
        "id": ticket_id,
        "vendor_id": _vendor(actor),
        "customer_id": customer_id,
        "code_hash": master.keyed_hash(code, purpose=_LOOKUP),
        "code_encrypted": master.encrypt(code.encode(), purpose=_SEALED),
        "created_at": utcnow(),
    }
    writes.append((Ticket, [row]))
    record(
        session, actor, "ticket.created", "ticket", ticket_id, after={"customer_id": customer_id}
    )
    return ticket_id


def ticket_code(ticket: Ticket, master: MasterKey) -> str:
    """The ticket's code, decrypted (for showing or re-sending it)."""
    return ticket_code_of(ticket.code_encrypted, master)


def ticket_code_of(code_encrypted: bytes, master: MasterKey) -> str:
    """The code sealed in a ticket's ``code_encrypted``, when the row is not loaded."""
    return master.decrypt(code_encrypted, purpose=_SEALED).decode()


def reveal_ticket_code(session: Session, actor: Actor, master: MasterKey, ticket_id: str) -> str:
    """The code of one ticket; every reveal is audited."""
    ticket = get_ticket(session, actor, ticket_id)
    record(session, actor, "ticket.code_revealed", "ticket", ticket.id)
    return ticket_code(ticket, master)


def ticket_lookup_hash(master: MasterKey, code: str) -> str:
    """What a ticket with this code is found by (its ``code_hash``). Raises
    ValidationError (``TICKET_CODE_INVALID``) for a typo."""
    try:
        normalized = normalize_ticket_code(code)
    except TicketCodeError as error:
        where = {} if error.position is None else {"position": error.position}
        raise ValidationError(str(error), field="code", code=error.code, **where) from error
    return master.keyed_hash(normalized, purpose=_LOOKUP)


def find_ticket(session: Session, vendor_id: str, master: MasterKey, code: str) -> Ticket:
    """The ticket with this code. Raises ValidationError (``TICKET_CODE_INVALID``) for a
    typo and NotFoundError (``TICKET_NOT_FOUND``) for a well-formed unknown code."""
    digest = ticket_lookup_hash(master, code)
    ticket = session.scalar(
        select(Ticket).where(Ticket.vendor_id == vendor_id, Ticket.code_hash == digest)
    )
    if ticket is None:
        raise unknown_ticket()
    return ticket


def unknown_ticket() -> NotFoundError:
    """What a well-formed code that no ticket of the vendor has is answered."""
    return NotFoundError("ticket", "with this code", code="TICKET_NOT_FOUND")


# The vendor of a slug, with the id of its ticket found by ``code_hash`` (None: none
# has it); no row for an unknown slug. A read that refuses a guessed code before any
# write transaction (``licentia.server.cloud.calls.redeem``).
TICKET_AT_VENDOR = (
    select(Vendor.id.label("vendor_id"), Ticket.id.label("ticket_id"))
    .outerjoin(
        Ticket, (Ticket.vendor_id == Vendor.id) & (Ticket.code_hash == bindparam("code_hash"))
    )
    .where(Vendor.slug == bindparam("slug"))
)


def get_ticket(session: Session, actor: Actor, ticket_id: str) -> Ticket:
    ticket = session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.vendor_id == _vendor(actor))
    )
    if ticket is None:
        raise NotFoundError("ticket", ticket_id)
    return ticket


@dataclass(frozen=True)
class TicketView:
    """A ticket as the vendor sees it: with the ids of its licenses, in issue order."""

    id: str
    customer_id: str | None
    license_ids: list[str]
    created_at: datetime


def ticket_view(session: Session, ticket: Ticket) -> TicketView:
    ids = session.scalars(
        select(License.id).where(License.ticket_id == ticket.id).order_by(License.id)
    )
    return TicketView(ticket.id, ticket.customer_id, list(ids), ticket.created_at)


def tickets_query(actor: Actor, customer_id: str | None = None) -> Select[Ticket]:
    query = select(Ticket).where(Ticket.vendor_id == _vendor(actor))
    return query if customer_id is None else query.where(Ticket.customer_id == customer_id)


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "order calls need a vendor-scoped actor"
    return actor.vendor_id
