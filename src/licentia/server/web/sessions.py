"""Who is looking at a page: an anonymous visitor, vendor staff or a customer user.

One cookie, ``licentia_session``, holds the session token: a vendor user's ``lis_…``
(the token the API's ``POST /sessions`` gives, read by the same ``authenticate``) or a
customer user's ``lcu_…``. A second cookie, ``licentia_visit``, is a random value that
binds the CSRF token of a visitor who is not logged in. Both are HttpOnly and
SameSite=Lax, and Secure when the portal is served over https. Logging in always
makes a new session token (an old one is ended), so a token planted before the login
never becomes a logged-in session (session fixation).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import AuthenticationError
from licentia.server.customer_users.services import (
    SESSION_PREFIX as CUSTOMER_PREFIX,
)
from licentia.server.customer_users.services import (
    CustomerIdentity,
    authenticate_customer,
    log_out_customer,
)
from licentia.server.tenancy.branding import Branding, branding_for
from licentia.server.tenancy.services import SESSION_PREFIX as STAFF_PREFIX
from licentia.server.tenancy.services import Credential, authenticate, log_out
from licentia.server.totp.services import enrolment_needed
from licentia.server.web import units

SESSION_COOKIE = "licentia_session"
VISIT_COOKIE = "licentia_visit"


@dataclass(frozen=True)
class Visitor:
    """The visitor of one request. ``binding`` is what their CSRF token is bound to."""

    binding: str
    staff: Actor | None = None
    customer: CustomerIdentity | None = None
    new_visit: str | None = None  # a visit cookie to set on the answer
    # A vendor admin logged in who must turn TOTP on first (the operator requires it):
    # no page counts them as staff until they have (``/console/totp``).
    enrolling: Actor | None = None
    # The staff member's vendor's branding, read with their session: every console page
    # is rendered in it, and one read less per page is one session and connection less.
    staff_brand: Branding | None = None


def visitor_of(request: Request) -> Visitor:
    """Read the cookies; an unknown or expired session counts as no session."""
    cached: Visitor | None = getattr(request.state, "visitor", None)
    if cached is not None:
        return cached
    visitor = _resolve(request)
    request.state.visitor = visitor
    return visitor


def _resolve(request: Request) -> Visitor:
    token = request.cookies.get(SESSION_COOKIE, "")
    source_ip = request.client.host if request.client else None
    try:
        if token.startswith(STAFF_PREFIX):
            required = units.backend_of(request).settings.totp_required_for_admins
            credential, must_enrol, brand = units.read(
                request, lambda s: _staff_session(s, token, source_ip, required)
            )
            if must_enrol:
                return Visitor(token, enrolling=credential.actor)
            return Visitor(token, staff=credential.actor, staff_brand=brand)
        if token.startswith(CUSTOMER_PREFIX):
            identity = units.read(request, lambda s: authenticate_customer(s, token))
            return Visitor(token, customer=identity)
    except AuthenticationError:
        pass
    visit = request.cookies.get(VISIT_COOKIE)
    if visit and len(visit) >= 32:
        return Visitor(visit)
    visit = secrets.token_urlsafe(32)
    return Visitor(visit, new_visit=visit)


def _staff_session(
    session: units.DbSession, token: str, source_ip: str | None, totp_required: bool
) -> tuple[Credential, bool, Branding | None]:
    credential = authenticate(session, token, source_ip=source_ip)
    user_id, vendor_id = credential.actor.id, credential.actor.vendor_id
    assert user_id is not None
    if enrolment_needed(session, user_id, required_for_admins=totp_required):
        return credential, True, None
    return credential, False, None if vendor_id is None else branding_for(session, vendor_id)


def secure_cookies(request: Request) -> bool:
    """Secure cookies when the visitor reached us over https (directly or through a
    proxy uvicorn trusts) or when the operator's public address is https."""
    public_url = units.backend_of(request).settings.public_url
    return request.url.scheme == "https" or public_url.startswith("https:")


def _set(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
    )


def remember_visit(response: Response, request: Request, visitor: Visitor) -> None:
    if visitor.new_visit is not None:
        _set(response, request, VISIT_COOKIE, visitor.new_visit, None)


def start_session(response: Response, request: Request, token: str, max_age: int) -> None:
    """Put a freshly made session token in the cookie (after ending any older one)."""
    _set(response, request, SESSION_COOKIE, token, max_age)


def end_session(request: Request) -> None:
    """End the session the cookie names, if any (before a login or on logout)."""
    token = request.cookies.get(SESSION_COOKIE, "")
    if token.startswith(STAFF_PREFIX):
        units.write(request, lambda s: log_out(s, token))
    elif token.startswith(CUSTOMER_PREFIX):
        units.write(request, lambda s: log_out_customer(s, token))


def forget_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure_cookies(request)
    )
