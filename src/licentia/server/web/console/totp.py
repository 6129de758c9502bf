"""Console: TOTP for staff. The code asked after the password (``/console/login/code``),
and the member's own page (``/console/totp``) to turn it on (a QR code and the secret,
confirmed with a code; the recovery codes shown once) and off (password and code).
The use cases are ``totp/services.py`` and ``totp/logins.py``.

Between the password and the code the browser holds a challenge: a cookie naming the
user and when it ends (five minutes), signed with a key derived from the master key
and bound to the visitor's CSRF binding, so it cannot be made up or carried to another
browser; it proves only that the password matched, and the code must follow.
"""

from __future__ import annotations

import hmac
import time
from datetime import timedelta
from typing import Any

import segno
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.db.base import utcnow
from licentia.server.logins.services import ThrottlePolicy
from licentia.server.rate_limits.families import Family, limited
from licentia.server.totp import services as totp
from licentia.server.totp.logins import finish_staff_login
from licentia.server.web import units
from licentia.server.web.console.staff import problems_of, render
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.logins import open_session
from licentia.server.web.rendering import pages_of
from licentia.server.web.sessions import secure_cookies, visitor_of

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
CHALLENGE_COOKIE = "licentia_login_step"
CHALLENGE_SECONDS = 300
_PURPOSE = "console-login-challenge"


# --- the challenge between password and code ---------------------------------------------


def _signature(request: Request, user_id: str, until: int) -> str:
    binding = visitor_of(request).binding
    master = units.backend_of(request).master
    return master.keyed_hash(f"{user_id}.{until}.{binding}", purpose=_PURPOSE)


def ask_for_code(request: Request, user_id: str) -> Response:
    """The answer to a right password of a user with TOTP on: to the code's page, with
    the challenge that lets it open the session."""
    until = int(time.time()) + CHALLENGE_SECONDS
    value = f"{user_id}.{until}.{_signature(request, user_id, until)}"
    response = RedirectResponse("/console/login/code", status_code=303)
    response.set_cookie(
        CHALLENGE_COOKIE,
        value,
        max_age=CHALLENGE_SECONDS,
        path="/console",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )
    return response


def _challenged_user(request: Request) -> str | None:
    """The user whose password matched, if the challenge is genuine and current."""
    parts = request.cookies.get(CHALLENGE_COOKIE, "").split(".")
    if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) < time.time():
        return None
    user_id, until, signature = parts[0], int(parts[1]), parts[2]
    return user_id if hmac.compare_digest(signature, _signature(request, user_id, until)) else None


def _code_page(request: Request, status_code: int = 200, **values: Any) -> Response:
    values.setdefault("problems", Problems())
    return pages_of(request).render(
        request, "console/login_code.html", status_code=status_code, **values
    )


@router.get("/login/code", response_class=HTMLResponse)
def code_form(request: Request) -> Response:
    if _challenged_user(request) is None:
        return RedirectResponse("/console/login", status_code=303)
    return _code_page(request)


@router.post("/login/code", response_class=HTMLResponse)
@limited(Family.LOGIN)
def enter_code(request: Request, code: str = Form("")) -> Response:
    user_id = _challenged_user(request)
    if user_id is None:
        return RedirectResponse("/console/login", status_code=303)
    backend = units.backend_of(request)
    settings = backend.settings
    try:
        done = finish_staff_login(
            backend.db,
            backend.master,
            user_id=user_id,
            code=code,
            source_ip=request.client.host if request.client else None,
            ttl=timedelta(minutes=settings.session_ttl_minutes),
            policy=ThrottlePolicy.of(settings),
            now=utcnow(),
        )
    except LicentiaError as error:
        problems = problems_of(request, error, field="code")
        return _code_page(request, status_code=status_of(error), problems=problems)
    response = RedirectResponse("/console/", status_code=303)
    open_session(response, request, done.token)
    response.delete_cookie(CHALLENGE_COOKIE, path="/console")
    return response


# --- the member's own TOTP page ---------------------------------------------------------------


def _member(request: Request) -> Actor | None:
    """The staff member, or the admin who must enrol before anything else."""
    visitor = visitor_of(request)
    return visitor.staff or visitor.enrolling


def _qr_code(uri: str) -> str:
    """The otpauth URI as a QR code, an SVG data URI (the pages allow ``data:`` images)."""
    return str(segno.make(uri, error="m").svg_data_uri(scale=4, border=2))


def _totp_page(request: Request, actor: Actor, status_code: int = 200, **values: Any) -> Response:
    master = units.backend_of(request).master
    assert actor.id is not None
    user_id = actor.id

    def work(session: units.DbSession) -> tuple[totp.TotpStatus, totp.Enrolment | None]:
        return totp.status_of(session, user_id), totp.enrolment_of(session, master, actor)

    state, enrolment = units.read(request, work)
    values.setdefault("problems", Problems())
    return render(
        request,
        actor,
        "console/totp.html",
        status_code=status_code,
        state=state,
        enrolment=enrolment,
        qr_code=_qr_code(enrolment.uri) if enrolment else None,
        enrolling=visitor_of(request).enrolling is not None,
        required=units.backend_of(request).settings.totp_required_for_admins,
        **values,
    )


@router.get("/totp", response_class=HTMLResponse)
def totp_page(request: Request) -> Response:
    actor = _member(request)
    if actor is None:
        return RedirectResponse("/console/login", status_code=303)
    return _totp_page(request, actor)


@router.post("/totp/enrol", response_class=HTMLResponse)
def enrol(request: Request) -> Response:
    actor = _member(request)
    if actor is None:
        return RedirectResponse("/console/login", status_code=303)
    master = units.backend_of(request).master
    try:
        units.write(request, lambda s: totp.start_enrolment(s, master, actor))
    except LicentiaError as error:
        problems = problems_of(request, error)
        return _totp_page(request, actor, status_code=status_of(error), problems=problems)
    return RedirectResponse("/console/totp", status_code=303)


@router.post("/totp/confirm", response_class=HTMLResponse)
def confirm(request: Request, code: str = Form("")) -> Response:
    actor = _member(request)
    if actor is None:
        return RedirectResponse("/console/login", status_code=303)
    master = units.backend_of(request).master
    try:
        codes = units.write(
            request, lambda s: totp.confirm_enrolment(s, master, actor, code, utcnow())
        )
    except LicentiaError as error:
        problems = problems_of(request, error, field="code")
        return _totp_page(request, actor, status_code=status_of(error), problems=problems)
    return render(request, actor, "console/recovery_codes.html", codes=codes)


@router.post("/totp/disable", response_class=HTMLResponse)
@limited(Family.LOGIN)
def disable(request: Request, password: str = Form(""), code: str = Form("")) -> Response:
    actor = visitor_of(request).staff
    if actor is None:
        return RedirectResponse("/console/login", status_code=303)
    backend = units.backend_of(request)
    required = backend.settings.totp_required_for_admins
    try:
        stored = units.read(request, lambda s: totp.password_hash_of(s, actor))
        if not backend.password_checks.matches(stored, password):
            raise ValidationError(
                "this is not your password", field="password", code="PASSWORD_WRONG"
            )
        units.write(
            request,
            lambda s: totp.disable_totp(
                s, backend.master, actor, code, utcnow(), required_for_admins=required
            ),
        )
    except LicentiaError as error:
        problems = problems_of(request, error)
        return _totp_page(request, actor, status_code=status_of(error), problems=problems)
    return RedirectResponse("/console/totp?done=off", status_code=303)
