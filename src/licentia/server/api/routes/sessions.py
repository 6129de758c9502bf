"""Vendor users log in for a session token."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from licentia.server.api.context import services_of
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.engine import run_write
from licentia.server.tenancy.services import LoggedIn, log_in

router = APIRouter(tags=["sessions"], route_class=ThreadedRoute)


class LoginIn(BaseModel):
    vendor: str = Field(description="the vendor's slug")
    email: str
    password: str


class SessionOut(BaseModel):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    role: str
    expires_at: datetime


@router.post("/sessions", response_model=SessionOut, status_code=201)
def create_session(body: LoginIn, request: Request) -> SessionOut:
    """Log in with e-mail and password; 401 ``UNAUTHENTICATED`` says nothing more."""
    services = services_of(request)
    ttl = timedelta(minutes=services.settings.session_ttl_minutes)
    return run_write(
        services.db,
        lambda s: session_out(
            log_in(s, vendor_slug=body.vendor, email=body.email, password=body.password, ttl=ttl)
        ),
    )


def session_out(done: LoggedIn) -> SessionOut:
    return SessionOut(token=done.token, role=done.user.role, expires_at=done.expires_at)
