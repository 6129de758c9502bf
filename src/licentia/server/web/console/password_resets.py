"""Console: a staff member who forgot their password asks for a link
(``/console/forgot``) and sets a new one from it (``/console/reset/{vendor}/{token}``).
The use cases are ``password_resets/services.py``, through ``web/resets.py``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import LicentiaError, LinkInvalidError
from licentia.server.password_resets.services import Realm
from licentia.server.rate_limits.families import Family, limited
from licentia.server.web import resets
from licentia.server.web.errors import Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.rendering import pages_of

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)


def _page(request: Request, template: str, status_code: int = 200, **values: Any) -> Response:
    values.setdefault("problems", Problems())
    return pages_of(request).render(request, template, status_code=status_code, **values)


def _problems(request: Request, error: LicentiaError, field: str) -> Problems:
    problems = Problems()
    problems.add(problem_of(error, pages_of(request).gettext_for(request).gettext, field=field))
    return problems


@router.get("/forgot", response_class=HTMLResponse)
def forgot_form(request: Request, vendor: str = "", sent: str = "") -> Response:
    values = {"vendor": vendor, "email": ""}
    return _page(request, "console/forgot.html", values=values, sent=bool(sent))


@router.post("/forgot", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def forgot(request: Request, vendor: str = Form(""), email: str = Form("")) -> Response:
    """The same answer whether the account exists or not."""
    slug = vendor.strip()
    try:
        mailing = resets.ask_for_link(request, Realm.STAFF, vendor_slug=slug, email=email)
    except LicentiaError as error:
        values = {"vendor": vendor, "email": email}
        problems = _problems(request, error, "email")
        return _page(
            request,
            "console/forgot.html",
            status_code=status_of(error),
            values=values,
            sent=False,
            problems=problems,
        )
    query = urlencode({"sent": 1, "vendor": slug})
    return RedirectResponse(f"/console/forgot?{query}", 303, background=mailing)


@router.get("/reset/{vendor}/{token}", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def reset_form(vendor: str, token: str, request: Request) -> Response:
    target = resets.target_of(request, Realm.STAFF, vendor, token)
    return _page(request, "console/reset.html", email=target.email, vendor=vendor)


@router.post("/reset/{vendor}/{token}", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def reset(
    vendor: str,
    token: str,
    request: Request,
    password: str = Form(""),
    password_again: str = Form(""),
) -> Response:
    try:
        resets.check_typed_twice(password, password_again)
        resets.set_new_password(
            request, Realm.STAFF, vendor_slug=vendor, token=token, password=password
        )
    except LinkInvalidError:
        raise
    except LicentiaError as error:
        target = resets.target_of(request, Realm.STAFF, vendor, token)
        return _page(
            request,
            "console/reset.html",
            status_code=status_of(error),
            email=target.email,
            vendor=vendor,
            problems=_problems(request, error, resets.password_field(error)),
        )
    query = urlencode({"password": "reset", "vendor": vendor})
    return RedirectResponse(f"/console/login?{query}", status_code=303)
