"""Portal: a customer user who forgot their password asks for a link
(``/portal/{slug}/forgot``) and sets a new one from it (``/portal/{slug}/reset/{token}``).
The use cases are ``password_resets/services.py``, through ``web/resets.py``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import LicentiaError, LinkInvalidError
from licentia.server.password_resets.services import Realm
from licentia.server.rate_limits.families import Family, limited
from licentia.server.web import resets
from licentia.server.web.errors import Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.portal.pages import Storefront, storefront
from licentia.server.web.rendering import pages_of

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=FORM_CHECKS)


def _page(
    request: Request, front: Storefront, template: str, status_code: int = 200, **values: Any
) -> Response:
    values.setdefault("problems", Problems())
    return pages_of(request).render(
        request,
        template,
        status_code=status_code,
        brand=front.brand,
        front=front,
        customer=front.customer,
        **values,
    )


def _problems(request: Request, error: LicentiaError, field: str) -> Problems:
    problems = Problems()
    problems.add(problem_of(error, pages_of(request).gettext_for(request).gettext, field=field))
    return problems


@router.get("/{slug}/forgot", response_class=HTMLResponse)
def forgot_form(slug: str, request: Request, sent: str = "") -> Response:
    front = storefront(request, slug)
    return _page(request, front, "portal/forgot.html", email="", sent=bool(sent))


@router.post("/{slug}/forgot", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def forgot(slug: str, request: Request, email: str = Form("")) -> Response:
    """The same answer whether the account exists or not."""
    front = storefront(request, slug)
    try:
        mailing = resets.ask_for_link(request, Realm.CUSTOMER, vendor_slug=slug, email=email)
    except LicentiaError as error:
        return _page(
            request,
            front,
            "portal/forgot.html",
            status_code=status_of(error),
            email=email,
            sent=False,
            problems=_problems(request, error, "email"),
        )
    return RedirectResponse(f"/portal/{slug}/forgot?sent=1", 303, background=mailing)


@router.get("/{slug}/reset/{token}", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def reset_form(slug: str, token: str, request: Request) -> Response:
    front = storefront(request, slug)
    target = resets.target_of(request, Realm.CUSTOMER, slug, token)
    return _page(request, front, "portal/reset.html", email=target.email, token=token)


@router.post("/{slug}/reset/{token}", response_class=HTMLResponse)
@limited(Family.PASSWORD_RESET)
def reset(
    slug: str,
    token: str,
    request: Request,
    password: str = Form(""),
    password_again: str = Form(""),
) -> Response:
    front = storefront(request, slug)
    try:
        resets.check_typed_twice(password, password_again)
        resets.set_new_password(
            request, Realm.CUSTOMER, vendor_slug=slug, token=token, password=password
        )
    except LinkInvalidError:
        raise
    except LicentiaError as error:
        target = resets.target_of(request, Realm.CUSTOMER, slug, token)
        return _page(
            request,
            front,
            "portal/reset.html",
            status_code=status_of(error),
            email=target.email,
            token=token,
            problems=_problems(request, error, resets.password_field(error)),
        )
    return RedirectResponse(f"/portal/{slug}/login?reset=1", status_code=303)
