"""Console pages for tickets: the list, a ticket with its licenses, showing its code
(audited, as ``POST /api/v1/tickets/{id}/code``) and sending it to the customer by
e-mail in the vendor's brand (``orders.mailing``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.db.base import utcnow
from licentia.server.db.pagination import Page, paginate
from licentia.server.licenses.holdings import ticket_holdings
from licentia.server.notifications.mail_jobs import enqueue_mail
from licentia.server.orders import mailing
from licentia.server.orders import services as orders
from licentia.server.orders.models import Ticket
from licentia.server.web import units
from licentia.server.web.console.staff import problems_of, query_string, render, staff_of, to_login
from licentia.server.web.errors import Problems
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
PAGE_SIZE = 50


@router.get("/tickets")
def list_tickets(request: Request, customer_id: str = "", cursor: str = "") -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("orders:read")

    def work(session: units.DbSession) -> Page[Ticket]:
        query = orders.tickets_query(actor, customer_id or None)
        return paginate(session, query, Ticket.id, cursor=cursor or None, limit=PAGE_SIZE)

    page = units.read(request, work)
    filters = {"customer_id": customer_id}
    return render(
        request,
        actor,
        "console/tickets.html",
        page=page,
        filters=filters,
        next_link=query_string(filters, cursor=page.next_cursor) if page.next_cursor else None,
    )


def _ticket(session: units.DbSession, actor: Actor, ticket_id: str) -> dict[str, Any]:
    """The ticket (NotFoundError unless it is this vendor's), its customer and licenses."""
    ticket = orders.get_ticket(session, actor, ticket_id)
    customer = None
    if ticket.customer_id is not None:
        customer = orders.get_customer(session, actor, ticket.customer_id)
    assert actor.vendor_id is not None
    return {
        "ticket": ticket,
        "customer": customer,
        "holdings": ticket_holdings(session, actor.vendor_id, ticket.id, utcnow()),
    }


def _page(
    request: Request,
    actor: Actor,
    ticket_id: str,
    *,
    code: str | None = None,
    to: str | None = None,
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    found = units.read(request, lambda s: _ticket(s, actor, ticket_id))
    customer = found["customer"]
    default_to = customer.email if customer is not None and customer.email else ""
    return render(
        request,
        actor,
        "console/ticket.html",
        status_code=status_code,
        code=code,
        values={"to": default_to if to is None else to},
        problems=problems or Problems(),
        **found,
    )


@router.get("/tickets/{ticket_id}")
def show_ticket(request: Request, ticket_id: str) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("orders:read")
    return _page(request, actor, ticket_id)


@router.post("/tickets/{ticket_id}/code")
def reveal_code(request: Request, ticket_id: str) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("orders:write")
    master = units.backend_of(request).master
    code = units.write(request, lambda s: orders.reveal_ticket_code(s, actor, master, ticket_id))
    return _page(request, actor, ticket_id, code=code)


@router.post("/tickets/{ticket_id}/mail")
def mail_code(request: Request, ticket_id: str, to: str = Form("")) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("orders:write")
    backend = units.backend_of(request)
    templates = request.app.state.mail_templates

    def queue(session: units.DbSession) -> tuple[str | None, str]:
        mail = mailing.ticket_mail(
            session,
            actor,
            backend.master,
            templates,
            ticket_id,
            to=to,
            public_url=backend.settings.public_url,
        )
        vendor_id = actor.vendor_id
        return enqueue_mail(
            session, backend.master, mail, sent_here=True, vendor_id=vendor_id
        ), mail.to

    try:
        job_id, address = units.write(request, queue)
    except ValidationError as error:  # another vendor's ticket stays a 404 page
        problems = problems_of(request, error)
        return _page(request, actor, ticket_id, to=to, problems=problems, status_code=422)
    try:  # the member waits and is told: a mail that failed is not sent later
        units.send_mail_now(request, job_id, retry=False)
    except LicentiaError as error:
        problems = problems_of(request, error, field="to")
        return _page(request, actor, ticket_id, to=to, problems=problems, status_code=502)
    units.write(request, lambda s: mailing.record_ticket_mailed(s, actor, ticket_id, address))
    return RedirectResponse(f"/console/tickets/{ticket_id}?mailed=1", status_code=303)
