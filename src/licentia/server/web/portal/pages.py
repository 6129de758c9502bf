"""Portal pages: the vendor's front door, customer login and logout, ticket lookup."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import AuthenticationError, LicentiaError, ServerBusyError
from licentia.server.activation.transfers import TransferAllowance, transfer_allowances
from licentia.server.cloud import admin
from licentia.server.cloud.models import CloudContainer
from licentia.server.customer_users.services import CustomerIdentity
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.holdings import Holding, ticket_holdings
from licentia.server.logins.bounded import log_in_customer_outside_transactions
from licentia.server.orders.customer_tickets import (
    CustomerTicket,
    customer_ticket,
    customer_tickets,
)
from licentia.server.orders.models import Ticket
from licentia.server.orders.services import find_ticket, ticket_code
from licentia.server.rate_limits.families import Family, limited
from licentia.server.tenancy.branding import Branding, logo_of, storefront_of
from licentia.server.tenancy.models import Vendor
from licentia.server.tenancy.services import get_vendor_by_slug
from licentia.server.web import units
from licentia.server.web.errors import Problem, Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.logins import close_session, log_in_with, open_session
from licentia.server.web.rendering import pages_of
from licentia.server.web.sessions import visitor_of

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=FORM_CHECKS)
MAX_CODES = 20
MAX_CONTAINERS = 200  # offered on a ticket page; a customer has a handful


@dataclass(frozen=True)
class Storefront:
    """The vendor whose portal this is, and who is looking (a customer of *this*
    vendor, or nobody: a session of another vendor's portal counts for nothing here)."""

    vendor: Vendor
    brand: Branding
    customer: CustomerIdentity | None


def storefront(request: Request, slug: str) -> Storefront:
    """Raises NotFoundError for an unknown vendor (the error page says so)."""

    vendor, brand = units.read(request, lambda session: storefront_of(session, slug))
    customer = visitor_of(request).customer
    if customer is not None and customer.vendor_id != vendor.id:
        customer = None
    return Storefront(vendor, brand, customer)


def _render(request: Request, front: Storefront, template: str, **values: Any) -> Response:
    return pages_of(request).render(
        request, template, brand=front.brand, front=front, customer=front.customer, **values
    )


@router.get("/{slug}/", response_class=HTMLResponse)
def home(slug: str, request: Request) -> Response:
    front = storefront(request, slug)
    mine: list[CustomerTicket] = []
    if front.customer is not None:
        who, master = front.customer, units.backend_of(request).master
        mine = units.read(
            request, lambda s: customer_tickets(s, master, who.vendor_id, who.customer_id)
        )
    return _render(request, front, "portal/home.html", codes="", problems=Problems(), mine=mine)


@router.get("/{slug}/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket(slug: str, ticket_id: str, request: Request) -> Response:
    """One of the logged-in customer's own tickets (any other answers not found)."""
    front = storefront(request, slug)
    if front.customer is None:
        return RedirectResponse(f"/portal/{slug}/login", status_code=303)
    return ticket_page(request, front, front.customer, ticket_id)


def ticket_page(
    request: Request,
    front: Storefront,
    who: CustomerIdentity,
    ticket_id: str,
    *,
    problems: Problems | None = None,
    status_code: int = 200,
    typed: Mapping[str, str] | None = None,
) -> Response:
    """The ticket's licenses and, for a customer admin, the company's cloud containers
    its cloud licenses can be put into."""
    master = units.backend_of(request).master

    def work(session: units.DbSession) -> tuple[TicketLookup, list[CloudContainer]]:
        found = customer_ticket(session, who.vendor_id, who.customer_id, ticket_id)
        lookup = _lookup(session, who.vendor_id, found, master)
        if not who.is_admin:
            return lookup, []
        containers = admin.customer_containers(
            session, who.vendor_id, who.customer_id, cursor=None, limit=MAX_CONTAINERS
        )
        return lookup, list(containers.items)

    lookup, containers = units.read(request, work)
    return pages_of(request).render(
        request,
        "portal/tickets.html",
        status_code=status_code,
        server=units.backend_of(request).settings.public_url,
        brand=front.brand,
        front=front,
        customer=who,
        codes="",
        lookups=[lookup],
        ticket_id=ticket_id,
        containers=containers,
        typed=typed or {},
        problems=problems or Problems(),
    )


@router.get("/{slug}")
def home_without_slash(slug: str) -> Response:
    return RedirectResponse(f"/portal/{slug}/", status_code=308)


@router.get("/{slug}/logo")
def logo(slug: str, request: Request) -> Response:
    def work(session: units.DbSession) -> tuple[bytes, str] | None:
        return logo_of(session, get_vendor_by_slug(session, slug))

    found = units.read(request, work)
    if found is None:
        return Response(status_code=404)
    content, media_type = found
    headers = {"Cache-Control": "public, max-age=3600", "Content-Security-Policy": "sandbox"}
    return Response(content, media_type=media_type, headers=headers)


# --- tickets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketLookup:
    """One code the visitor typed, and what it found."""

    code: str
    problem: Problem | None = None
    holdings: tuple[Holding, ...] = ()
    transfers: Mapping[str, TransferAllowance] = field(default_factory=dict)


def _lookup(
    session: units.DbSession, vendor_id: str, ticket: Ticket, master: MasterKey
) -> TicketLookup:
    """A found ticket's licenses and, for device licenses with a transfer limit, the
    moves left (before the customer moves one)."""
    now = utcnow()
    holdings = tuple(ticket_holdings(session, vendor_id, ticket.id, now))
    limits = [
        (holding.license_id, {"transfer_limit": holding.transfer_limit})
        for holding in holdings
        if holding.delivery == "device"
    ]  # read with the holdings: a second query over the ticket's licenses cost more
    return TicketLookup(
        ticket_code(ticket, master),
        holdings=holdings,
        transfers=transfer_allowances(session, limits, now),
    )


def _codes(text: str) -> list[str]:
    """The codes in the text: one per line, or separated by commas or semicolons."""
    return [code.strip() for code in re.split(r"[\n,;]+", text) if code.strip()][:MAX_CODES]


def look_up(request: Request, vendor: Vendor, code: str) -> TicketLookup:
    """Find the ticket at this vendor only (``find_ticket`` checks the check symbol
    before it looks anything up)."""
    gettext = pages_of(request).gettext_for(request).gettext
    master = units.backend_of(request).master

    def work(session: units.DbSession) -> TicketLookup:
        return _lookup(session, vendor.id, find_ticket(session, vendor.id, master, code), master)

    try:
        return units.read(request, work)
    except LicentiaError as error:
        return TicketLookup(code, problem_of(error, gettext, field="codes"))


@router.post("/{slug}/tickets", response_class=HTMLResponse)
@limited(Family.TICKET)
def show_tickets(slug: str, request: Request, codes: str = Form("")) -> Response:
    """The licenses of every code entered (a lookup: the codes stay out of the URL)."""
    front = storefront(request, slug)
    lookups = [look_up(request, front.vendor, code) for code in _codes(codes)]
    problems = Problems()
    if not lookups:
        gettext = pages_of(request).gettext_for(request).gettext
        problems.add(Problem("VALIDATION_FAILED", gettext("Enter a ticket code."), field="codes"))
    status = 200 if lookups and all(item.problem is None for item in lookups) else 422
    return pages_of(request).render(
        request,
        "portal/tickets.html",
        server=units.backend_of(request).settings.public_url,
        status_code=status,
        brand=front.brand,
        front=front,
        customer=front.customer,
        codes=codes,
        lookups=lookups,
        problems=problems,
    )


# --- customer login --------------------------------------------------------------------


@router.get("/{slug}/login", response_class=HTMLResponse)
def login_form(slug: str, request: Request) -> Response:
    front = storefront(request, slug)
    return _render(request, front, "portal/login.html", values={}, problems=Problems())


@router.post("/{slug}/login", response_class=HTMLResponse)
@limited(Family.LOGIN)
def log_in(
    slug: str, request: Request, email: str = Form(""), password: str = Form("")
) -> Response:
    front = storefront(request, slug)
    try:
        done = log_in_with(
            request,
            log_in_customer_outside_transactions,
            vendor_slug=slug,
            email=email,
            password=password,
        )
    except (AuthenticationError, ServerBusyError) as error:
        problems = Problems()
        problems.add(problem_of(error, pages_of(request).gettext_for(request).gettext))
        status = status_of(error)
        return pages_of(request).render(
            request,
            "portal/login.html",
            status_code=status,
            brand=front.brand,
            front=front,
            customer=None,
            values={"email": email},
            problems=problems,
        )
    response = RedirectResponse(f"/portal/{slug}/", status_code=303)
    open_session(response, request, done.token)
    return response


@router.post("/{slug}/logout")
def log_out(slug: str, request: Request) -> Response:
    response = RedirectResponse(f"/portal/{slug}/", status_code=303)
    close_session(response, request)
    return response
