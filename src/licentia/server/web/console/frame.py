"""What the console's areas of licenses, devices, offline files, keys, staff users and
the audit log add to ``console/staff.py``: the staff member with the scope a page
needs (or a redirect to the login), a list's filters kept in its address while it
pages on, and an object's history."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from licentia.domain.actors import Actor
from licentia.domain.errors import ValidationError
from licentia.server.audit.models import AuditEvent
from licentia.server.audit.services import AuditFilter, query_events
from licentia.server.db.pagination import MAX_LIMIT, paginate
from licentia.server.web import units
from licentia.server.web.console.staff import brand_of, problems_of, render, staff_of, to_login

PAGE_SIZE = 50
HISTORY_SIZE = 100


class LoginNeeded(Exception):  # noqa: N818 - not an error: the visitor is sent to log in
    """Raised by :func:`require_staff` for a visitor not logged in as staff; the console
    answers it with a redirect to its login page (``web/app.py``)."""


def require_staff(request: Request, scope: str) -> Actor:
    """The staff member looking, holding ``scope`` (a role's scopes, as in the API: a
    read-only member holds no ``…:write``). Raises LoginNeeded or PermissionDeniedError."""
    actor = staff_of(request)
    if actor is None:
        raise LoginNeeded
    actor.require(scope)
    return actor


def login_redirect(request: Request, error: Exception) -> Response:
    """The console's answer to LoginNeeded."""
    return to_login(request)


def vendor_id_of(actor: Actor) -> str:
    assert actor.vendor_id is not None, "staff always act inside their vendor"
    return actor.vendor_id


# --- lists -------------------------------------------------------------------------------


def filters_of(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The filters of a list as its address gives them (empty ones left out)."""
    params = request.query_params
    return {name: params[name].strip() for name in names if params.get(name, "").strip()}


def limit_of(request: Request) -> int:
    """The page size the address asks for (``limit``), else PAGE_SIZE."""
    text = request.query_params.get("limit", "")
    try:
        return max(1, min(int(text), MAX_LIMIT)) if text else PAGE_SIZE
    except ValueError as error:
        raise ValidationError("limit is a whole number", field="limit") from error


def next_page(request: Request, cursor: str | None) -> str | None:
    """The address of the next page: the same filters, the next cursor."""
    if cursor is None:
        return None
    url = request.url.include_query_params(cursor=cursor)
    return f"{url.path}?{url.query}"


def history_of(
    session: units.DbSession, actor: Actor, object_type: str, object_id: str
) -> list[AuditEvent]:
    """An object's audit events, oldest first (its first HISTORY_SIZE; the audit log
    pages through all of them)."""
    query = query_events(
        vendor_id_of(actor), AuditFilter(object_type=object_type, object_id=object_id)
    )
    return list(paginate(session, query, AuditEvent.seq, cursor=None, limit=HISTORY_SIZE).items)


__all__ = [
    "LoginNeeded",
    "brand_of",
    "filters_of",
    "history_of",
    "limit_of",
    "login_redirect",
    "next_page",
    "problems_of",
    "render",
    "require_staff",
    "vendor_id_of",
]
