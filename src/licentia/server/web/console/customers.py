"""Console pages for customers: search, create, edit, and a customer with all their
tickets, licenses, cloud containers and devices, and their users with any login lock
(which staff may lift, as the customer's admin can in the portal). The same use cases as
``/api/v1/customers``; the overview is ``reports.customers``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from licentia.domain.errors import LicentiaError
from licentia.server.db.base import utcnow
from licentia.server.db.pagination import Page, paginate
from licentia.server.logins import locks
from licentia.server.logins.services import ThrottlePolicy
from licentia.server.orders import services as orders
from licentia.server.orders.models import Customer
from licentia.server.reports.customers import CustomerOverview, customer_overview
from licentia.server.web import units
from licentia.server.web.console.staff import problems_of, query_string, render, staff_of, to_login
from licentia.server.web.errors import Problems
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
PAGE_SIZE = 50


def _changes(name: str, external_id: str, email: str) -> dict[str, str | None]:
    """The form's fields; an empty optional field clears it."""
    return {
        "name": name.strip(),
        "external_id": external_id.strip() or None,
        "email": email.strip() or None,
    }


@router.get("/customers")
def list_customers(request: Request, q: str = "", cursor: str = "") -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("customers:read")
    return _list(request, q, cursor, {}, Problems())


def _list(
    request: Request,
    q: str,
    cursor: str,
    values: dict[str, str],
    problems: Problems,
    *,
    status_code: int = 200,
) -> Response:
    actor = staff_of(request)
    assert actor is not None

    def work(session: units.DbSession) -> Page[Customer]:
        query = orders.customers_query(actor, search=q.strip() or None)
        return paginate(session, query, Customer.id, cursor=cursor or None, limit=PAGE_SIZE)

    page = units.read(request, work)
    filters = {"q": q}
    return render(
        request,
        actor,
        "console/customers.html",
        status_code=status_code,
        page=page,
        filters=filters,
        next_link=query_string(filters, cursor=page.next_cursor) if page.next_cursor else None,
        values=values,
        problems=problems,
    )


@router.post("/customers")
def create_customer(
    request: Request, name: str = Form(""), external_id: str = Form(""), email: str = Form("")
) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("customers:write")
    changes = _changes(name, external_id, email)
    try:
        customer = units.write(
            request,
            lambda s: orders.create_customer(
                s,
                actor,
                name=changes["name"] or "",
                external_id=changes["external_id"],
                email=changes["email"],
            ),
        )
    except LicentiaError as error:
        values = {"name": name, "external_id": external_id, "email": email}
        return _list(request, "", "", values, problems_of(request, error), status_code=422)
    return RedirectResponse(f"/console/customers/{customer.id}?created=1", status_code=303)


@router.get("/customers/{customer_id}")
def show_customer(request: Request, customer_id: str) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("customers:read")
    return _detail(request, customer_id, None, Problems())


def _detail(
    request: Request,
    customer_id: str,
    values: dict[str, str] | None,
    problems: Problems,
    *,
    status_code: int = 200,
) -> Response:
    actor = staff_of(request)
    assert actor is not None
    policy, now = ThrottlePolicy.of(units.backend_of(request).settings), utcnow()

    def work(session: units.DbSession) -> tuple[CustomerOverview, Any]:
        overview = customer_overview(session, actor, customer_id, now)
        return overview, locks.customer_logins(session, actor, overview.customer.id, policy, now)

    overview, (people, logins) = units.read(request, work)
    customer = overview.customer
    if values is None:
        values = {
            "name": customer.name,
            "external_id": customer.external_id or "",
            "email": customer.email or "",
        }
    return render(
        request,
        actor,
        "console/customer.html",
        status_code=status_code,
        overview=overview,
        customer=customer,
        people=people,
        logins=logins,
        now=now,
        values=values,
        problems=problems,
    )


@router.post("/customers/{customer_id}/users/{user_id}/unlock")
def unlock_user(request: Request, customer_id: str, user_id: str) -> Response:
    """Lift a customer user's login lock (and forget their failed logins), as their
    customer admin can in the portal."""
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    units.write(request, lambda s: locks.unlock_customer_user(s, actor, customer_id, user_id))
    return RedirectResponse(f"/console/customers/{customer_id}?unlocked=1", status_code=303)


@router.post("/customers/{customer_id}")
def update_customer(
    request: Request,
    customer_id: str,
    name: str = Form(""),
    external_id: str = Form(""),
    email: str = Form(""),
) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("customers:write")
    changes = _changes(name, external_id, email)
    try:
        units.write(request, lambda s: orders.update_customer(s, actor, customer_id, changes))
    except LicentiaError as error:
        values = {"name": name, "external_id": external_id, "email": email}
        return _detail(request, customer_id, values, problems_of(request, error), status_code=422)
    return RedirectResponse(f"/console/customers/{customer_id}?saved=1", status_code=303)
