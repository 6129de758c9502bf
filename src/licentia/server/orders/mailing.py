"""Sending a ticket's code to the customer by e-mail, in the vendor's brand.

Three steps, so that no transaction waits for a mail server: ``ticket_mail`` reads
the ticket and renders the message, the caller queues and sends it (a mail job,
``notifications.mail_jobs``), and ``record_ticket_mailed`` audits the sending once it
happened (a write). A mail that could not be sent leaves no record that it was.
"""

from __future__ import annotations

from dataclasses import asdict

from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.emails import check_address
from licentia.server.audit.services import record
from licentia.server.keys.master import MasterKey
from licentia.server.mail import Mail, MailTemplates
from licentia.server.orders.services import get_ticket, ticket_code
from licentia.server.tenancy.branding import branding_for


def ticket_mail(
    session: Session,
    actor: Actor,
    master: MasterKey,
    templates: MailTemplates,
    ticket_id: str,
    *,
    to: str,
    public_url: str,
) -> Mail:
    """The message carrying the ticket's code to ``to``, rendered from the vendor's
    ``ticket`` templates. Raises NotFoundError (another vendor's or no ticket),
    ValidationError (``EMAIL_INVALID``)."""
    address = check_address(to)
    ticket = get_ticket(session, actor, ticket_id)
    assert actor.vendor_id is not None
    brand = branding_for(session, actor.vendor_id)
    return templates.render(
        "ticket",
        to=address,
        vendor_slug=brand.vendor_slug,
        brand=asdict(brand),
        ticket_code=ticket_code(ticket, master),
        portal_url=f"{public_url.rstrip('/')}/portal/{brand.vendor_slug}/",
    )


def record_ticket_mailed(session: Session, actor: Actor, ticket_id: str, to: str) -> None:
    """Audit that the ticket's code was sent to ``to`` (call after sending)."""
    ticket = get_ticket(session, actor, ticket_id)
    record(session, actor, "ticket.code_mailed", "ticket", ticket.id, after={"to": to})
