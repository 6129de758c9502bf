"""Vendor users log in for a session token."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from licentia.server.api.context import services_of
from licentia.server.api.schemas import CODE, EMAIL, SECRET
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.base import utcnow
from licentia.server.logins.bounded import log_in_staff_outside_transactions
from licentia.server.logins.services import ThrottlePolicy
from licentia.server.rate_limits.families import Family, limited
from licentia.server.tenancy.services import LoggedIn
from licentia.server.totp.logins import second_factor

router = APIRouter(tags=["sessions"], route_class=ThreadedRoute)


class LoginIn(BaseModel):
    vendor: str = Field(max_length=CODE, description="the vendor's slug")
    email: str = Field(max_length=EMAIL)
    password: str = Field(max_length=SECRET)
    totp_code: str | None = Field(
        default=None,
        max_length=SECRET,
        description="the authenticator's current code, or a recovery code, for a user with "
        "TOTP on (401 TOTP_REQUIRED without it, TOTP_INVALID when wrong)",
    )


class SessionOut(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    role: str
    expires_at: datetime


@router.post(
    "/sessions",
    response_model=SessionOut,
    status_code=201,
    responses={401: {"description": "UNAUTHENTICATED: a wrong vendor, e-mail or password"}},
)
@limited(Family.LOGIN)
def create_session(body: LoginIn, request: Request) -> SessionOut:
    """Log in with e-mail and password; 401 ``UNAUTHENTICATED`` says nothing more;
    429 ``LOGIN_LOCKED`` while the account is locked after failed logins in a row (the
    right password too), 429 ``LOGIN_THROTTLED`` once the address failed too often;
    503 ``LOGINS_BUSY`` while the process checks as many passwords as it may at once.
    A user with TOTP on sends ``totp_code`` too: 401 ``TOTP_REQUIRED`` without it,
    ``TOTP_INVALID`` when wrong (counted as a failed login); 403
    ``TOTP_ENROLMENT_REQUIRED`` for an admin without TOTP when the operator requires it."""
    services = services_of(request)
    settings = services.settings
    now = utcnow()
    code = body.totp_code
    required = settings.totp_required_for_admins
    done = log_in_staff_outside_transactions(
        services.db,
        services.password_checks,
        vendor_slug=body.vendor,
        email=body.email,
        password=body.password,
        source_ip=request.client.host if request.client else None,
        ttl=timedelta(minutes=settings.session_ttl_minutes),
        policy=ThrottlePolicy.of(settings),
        now=now,
        second_factor=second_factor(
            services.db, services.master, code, now=now, required_for_admins=required
        ),
    )
    return session_out(done)


def session_out(done: LoggedIn) -> SessionOut:
    return SessionOut(token=done.token, role=done.user.role, expires_at=done.expires_at)
