"""Logging in and out of the web fronts: the same use cases, throttle and session
rules for the console's staff and the portal's customer users."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import Request, Response

from licentia.domain.errors import LoginThrottledError
from licentia.server.customer_users.services import CustomerLoggedIn
from licentia.server.db.base import utcnow
from licentia.server.logins.services import ThrottlePolicy
from licentia.server.tenancy.services import LoggedIn
from licentia.server.web import units
from licentia.server.web.sessions import end_session, forget_session, start_session

LogIn = Callable[..., LoggedIn | CustomerLoggedIn]


def log_in_with(
    request: Request,
    log_in: LogIn,
    *,
    vendor_slug: str,
    email: str,
    password: str,
    **more: Any,
) -> LoggedIn | CustomerLoggedIn:
    """Run a login (``logins.bounded``, given ``more`` of its arguments) for this
    visitor; raises its AuthenticationError, LoginThrottledError or ServerBusyError."""
    backend = units.backend_of(request)
    settings = backend.settings
    return log_in(
        backend.db,
        backend.password_checks,
        vendor_slug=vendor_slug,
        email=email,
        password=password,
        source_ip=request.client.host if request.client else None,
        ttl=timedelta(minutes=settings.session_ttl_minutes),
        policy=ThrottlePolicy.of(settings),
        now=utcnow(),
        **more,
    )


def open_session(response: Response, request: Request, token: str) -> None:
    """End the session the browser had (if any) and set the new one: a fresh token at
    every login, so a token planted before the login stays worthless."""
    end_session(request)
    minutes = units.backend_of(request).settings.session_ttl_minutes
    start_session(response, request, token, minutes * 60)


def close_session(response: Response, request: Request) -> None:
    end_session(request)
    forget_session(response, request)


__all__ = ["LoginThrottledError", "close_session", "log_in_with", "open_session"]
