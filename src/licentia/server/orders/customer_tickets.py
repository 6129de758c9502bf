"""A customer's own tickets, as the customer sees them in the License Portal.

Every read is scoped to one customer of one vendor: a ticket of another customer,
even of the same vendor, is answered as not found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from licentia.domain.errors import NotFoundError
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.orders.models import Ticket
from licentia.server.orders.services import ticket_code


@dataclass(frozen=True)
class CustomerTicket:
    id: str
    code: str
    created_at: datetime
    licenses: int


def customer_tickets(
    session: Session, master: MasterKey, vendor_id: str, customer_id: str
) -> list[CustomerTicket]:
    """The customer's tickets, newest first, with how many licenses each holds."""
    count = (
        select(func.count())
        .where(License.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Ticket, count)
        .where(Ticket.vendor_id == vendor_id, Ticket.customer_id == customer_id)
        .order_by(Ticket.id.desc())
        .limit(200)
    ).all()
    return [
        CustomerTicket(ticket.id, ticket_code(ticket, master), ticket.created_at, licenses)
        for ticket, licenses in rows
    ]


def customer_ticket(session: Session, vendor_id: str, customer_id: str, ticket_id: str) -> Ticket:
    """One of the customer's tickets; NotFoundError for any other (another customer's
    or vendor's ticket, or none), so a guessed id reveals nothing."""
    ticket = session.scalar(
        select(Ticket).where(
            Ticket.id == ticket_id,
            Ticket.vendor_id == vendor_id,
            Ticket.customer_id == customer_id,
        )
    )
    if ticket is None:
        raise NotFoundError("ticket", ticket_id)
    return ticket
