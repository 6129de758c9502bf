"""The page behind a reminder mail's unsubscribe link (``/unsubscribe/{token}``): it
asks to confirm (opening a link must not unsubscribe anyone), and the confirmation
records the choice. The use cases are ``notifications/unsubscribe.py``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from licentia.domain.errors import LinkInvalidError
from licentia.server.notifications.unsubscribe import (
    Subscription,
    read_token,
    unsubscribe,
)
from licentia.server.tenancy.branding import branding_for
from licentia.server.web import units
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.rendering import pages_of

router = APIRouter(include_in_schema=False, dependencies=FORM_CHECKS)


def _subscription(request: Request, token: str) -> Subscription | None:
    try:
        return read_token(units.backend_of(request).master, token)
    except LinkInvalidError:
        return None


def _page(request: Request, subscription: Subscription | None, *, done: bool = False) -> Response:
    if subscription is None:
        return pages_of(request).render(
            request, "unsubscribe.html", status_code=404, invalid=True, done=False, email=""
        )
    brand = units.read(request, lambda s: branding_for(s, subscription.vendor_id))
    return pages_of(request).render(
        request, "unsubscribe.html", brand=brand, email=subscription.email, done=done, invalid=False
    )


@router.get("/unsubscribe/{token}", response_class=HTMLResponse)
def confirm(token: str, request: Request) -> Response:
    return _page(request, _subscription(request, token))


@router.post("/unsubscribe/{token}", response_class=HTMLResponse)
def stop_reminders(token: str, request: Request) -> Response:
    subscription = _subscription(request, token)
    if subscription is not None:
        source_ip = request.client.host if request.client else None
        units.write(request, lambda s: unsubscribe(s, subscription, source_ip))
    return _page(request, subscription, done=True)
