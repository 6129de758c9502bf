"""CSRF protection for every form: a synchronizer token derived from the session.

The token is an HMAC (a key derived from the master key) of the visitor's binding: the
session token when logged in, else the random visit cookie. It is put in every form
as ``csrf_token`` (htmx sends it as the ``X-CSRF-Token`` header) and checked on every
request that is not a GET or HEAD, by a dependency on each web router
(``forms.FORM_CHECKS``), so no form can be added without it. A new session (login)
makes a new token; an attacker's page can neither read the token nor, with SameSite=Lax
cookies, post with the visitor's cookies.
"""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from licentia.domain.errors import PermissionDeniedError
from licentia.server.web import units
from licentia.server.web.sessions import visitor_of

FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
_PURPOSE = "web-csrf-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRejectedError(PermissionDeniedError):
    code = "CSRF_FAILED"


def csrf_token(request: Request) -> str:
    """The token the visitor's forms carry."""
    binding = visitor_of(request).binding
    return units.backend_of(request).master.keyed_hash(binding, purpose=_PURPOSE)


async def check_csrf(request: Request) -> None:
    """A router dependency: refuse an unsafe request without the visitor's token."""
    if request.method in _SAFE:
        return
    sent = request.headers.get(HEADER)
    if sent is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(FORM_TYPES):
            form = await request.form()
            value = form.get(FIELD)
            sent = value if isinstance(value, str) else None
    expected = await run_in_threadpool(csrf_token, request)  # may read the session
    if not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRejectedError(
            "this form is out of date or did not come from this site; reload the page and "
            "send it again"
        )
