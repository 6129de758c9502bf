"""Issuing a large order's licenses in the background, a batch at a time.

``place_order`` writes a large order's lines without their licenses, marks the order
"processing" and asks for an ``orders.issue`` job in the same transaction. Each run
of the job issues up to ISSUE_BATCH of the missing licenses in one short transaction
(the one that marks the job done) and asks for the next run in it; the run that
finds nothing missing marks the order "completed". What is missing is counted from
the licenses written, under the order's row lock: a run that died before its commit
left nothing, and no run can issue a license twice. No transaction holds the
database's write lock (SQLite) or the vendor's audit chain (PostgreSQL) for longer
than one batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.server.audit.services import record
from licentia.server.catalog.models import Product, Template
from licentia.server.catalog.services import TemplateRef, template_ref
from licentia.server.jobs import enqueue
from licentia.server.licenses.models import License
from licentia.server.licenses.services import count_issued, new_license_rows, record_issued
from licentia.server.orders._rows import write_rows
from licentia.server.orders.models import Order, OrderLine

ISSUING_JOB = "orders.issue"
ISSUE_BATCH = 500
_PROCESSING, _COMPLETED = "processing", "completed"


def start_issuing(session: Session, actor: Actor, order_id: str) -> None:
    """Mark the order "processing" and ask for the job that issues its missing
    licenses, both in the caller's transaction."""
    session.execute(update(Order).where(Order.id == order_id).values(status=_PROCESSING))
    enqueue(session, ISSUING_JOB, issuing_payload(order_id, actor), vendor_id=actor.vendor_id)


def issuing_payload(order_id: str, actor: Actor) -> dict[str, Any]:
    """The job's payload: the order, and who placed it (the licenses' audit actor)."""
    who = {"kind": actor.kind.value, "id": actor.id, "vendor_id": actor.vendor_id}
    return {"order_id": order_id, "actor": who | {"source_ip": actor.source_ip}}


def issue_batch(
    session: Session, payload: dict[str, Any], now: datetime, batch: int = ISSUE_BATCH
) -> int:
    """Issue up to ``batch`` of the order's missing licenses; when none is missing
    after them, mark it "completed", otherwise ask for the next run. Returns how many
    were issued. An order that is not processing (completed already) is left alone."""
    order = session.scalars(
        select(Order).where(Order.id == payload["order_id"]).with_for_update()
    ).one_or_none()
    if order is None or order.status != _PROCESSING:
        return 0
    actor = _actor(payload["actor"])
    missing = _missing(session, order)
    rows: list[dict[str, Any]] = []
    templates = _templates(session, {line.template_id for line, _ in missing})
    for line, count in missing:
        take = min(count, batch - len(rows))
        if take <= 0:
            break
        rows += new_license_rows(
            templates[line.template_id],
            now,
            ticket_id=order.ticket_id,
            order_line_id=line.id,
            customer_id=order.customer_id,
            quantity=take,
        )
    if rows:
        record_issued(session, actor, rows, now)
        write_rows(session.connection(), [(License, rows)])
        count_issued(session, rows)
    if len(rows) == sum(count for _, count in missing):
        order.status = _COMPLETED
        total = sum(line.quantity for line in order.lines)
        record(session, actor, "order.completed", "order", order.id, after={"licenses": total})
    else:
        enqueue(session, ISSUING_JOB, payload, vendor_id=order.vendor_id)
    return len(rows)


def _missing(session: Session, order: Order) -> list[tuple[OrderLine, int]]:
    issued = dict(
        session.execute(
            select(License.order_line_id, func.count())
            .where(License.order_line_id.in_([line.id for line in order.lines]))
            .group_by(License.order_line_id)
        ).all()
    )
    lines = [(line, line.quantity - issued.get(line.id, 0)) for line in order.lines]
    return [(line, count) for line, count in lines if count > 0]


def _templates(session: Session, ids: set[str]) -> dict[str, TemplateRef]:
    rows = session.execute(
        select(
            Template.id,
            Template.vendor_id,
            Template.sku,
            Product.code,
            Template.features,
            Template.options,
        )
        .join(Product, Product.id == Template.product_id)
        .where(Template.id.in_(ids))
    ).all()
    return {row.id: template_ref(row) for row in rows}


def _actor(fields: dict[str, Any]) -> Actor:
    return Actor(
        ActorKind(fields["kind"]),
        fields["id"],
        fields["vendor_id"],
        source_ip=fields.get("source_ip"),
    )
