"""Console pages: login, logout, the vendor's branding (the dashboard is dashboard.py)."""

from __future__ import annotations

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from licentia.domain.actors import Actor
from licentia.domain.errors import (
    AuthenticationError,
    CodeRequiredError,
    LicentiaError,
    ServerBusyError,
)
from licentia.server.db.base import utcnow
from licentia.server.logins.bounded import log_in_staff_outside_transactions
from licentia.server.rate_limits.families import Family, limited
from licentia.server.tenancy.branding import Branding, branding_of, update_branding
from licentia.server.tenancy.models import Vendor
from licentia.server.totp.logins import second_factor
from licentia.server.web import units
from licentia.server.web.console.totp import ask_for_code
from licentia.server.web.errors import Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.logins import close_session, log_in_with, open_session
from licentia.server.web.rendering import pages_of
from licentia.server.web.sessions import visitor_of

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)


def _vendor(session: units.DbSession, actor: Actor) -> Vendor:
    vendor = session.get(Vendor, actor.vendor_id)
    assert vendor is not None
    return vendor


def _brand(request: Request, actor: Actor) -> Branding:
    return units.read(request, lambda s: branding_of(s, _vendor(s, actor)))


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, vendor: str = "") -> Response:
    if visitor_of(request).enrolling is not None:  # logged in, TOTP to turn on first
        return RedirectResponse("/console/totp", status_code=303)
    return pages_of(request).render(
        request, "console/login.html", values={"vendor": vendor}, problems=Problems()
    )


@router.post("/login", response_class=HTMLResponse)
@limited(Family.LOGIN)
def log_in(
    request: Request,
    vendor: str = Form(""),
    email: str = Form(""),
    password: str = Form(""),
) -> Response:
    pages = pages_of(request)
    backend = units.backend_of(request)
    try:
        done = log_in_with(
            request,
            log_in_staff_outside_transactions,
            vendor_slug=vendor.strip(),
            email=email,
            password=password,
            second_factor=second_factor(backend.db, backend.master, None, now=utcnow()),
        )
    except CodeRequiredError as needed:
        return ask_for_code(request, needed.user_id)
    except (AuthenticationError, ServerBusyError) as error:
        problems = Problems()
        problems.add(problem_of(error, pages.gettext_for(request).gettext))
        status = status_of(error)
        values = {"vendor": vendor, "email": email}
        return pages.render(
            request, "console/login.html", status_code=status, values=values, problems=problems
        )
    response = RedirectResponse("/console/", status_code=303)
    open_session(response, request, done.token)
    return response


@router.post("/logout")
def log_out(request: Request) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    close_session(response, request)
    return response


@router.get("/branding", response_class=HTMLResponse)
def branding_form(request: Request) -> Response:
    actor = visitor_of(request).staff
    if actor is None:
        return _to_login(request)
    actor.require("vendor:read")
    brand = _brand(request, actor)
    return pages_of(request).render(
        request, "console/branding.html", brand=brand, values=brand.__dict__, problems=Problems()
    )


@router.post("/branding", response_class=HTMLResponse, max_body_size=units.FORM_WITH_FILE)
async def save_branding(
    request: Request,
    display_name: str = Form(""),
    primary_colour: str = Form(""),
    accent_colour: str = Form(""),
    support_email: str = Form(""),
    support_url: str = Form(""),
    logo: UploadFile | None = File(None),
) -> Response:
    logo_file = None
    if logo is not None and logo.filename:
        logo_file = (await logo.read(), logo.content_type or "")
    values = {
        "display_name": display_name,
        "primary_colour": primary_colour,
        "accent_colour": accent_colour,
        "support_email": support_email,
        "support_url": support_url,
    }
    return await run_in_threadpool(_save_branding, request, values, logo_file)


def _save_branding(
    request: Request, values: dict[str, str], logo: tuple[bytes, str] | None
) -> Response:
    actor = visitor_of(request).staff
    if actor is None:
        return _to_login(request)
    actor.require("vendor:write")
    pages = pages_of(request)
    try:
        units.write(
            request,
            lambda s: update_branding(s, actor, _vendor(s, actor), logo=logo, **values),
        )
    except LicentiaError as error:
        problems = Problems()
        problems.add(problem_of(error, pages.gettext_for(request).gettext))
        return pages.render(
            request,
            "console/branding.html",
            status_code=422,
            brand=_brand(request, actor),
            values=values,
            problems=problems,
        )
    return RedirectResponse("/console/branding?saved=1", status_code=303)
