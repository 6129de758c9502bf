"""What every console page does: find the staff member looking (with the scope the
page needs), render a page in their vendor's brand, turn a service's error into the
form's problems, and keep a list's filters in its address while it pages on."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.audit.models import AuditEvent
from licentia.server.audit.services import AuditFilter, query_events
from licentia.server.db.pagination import MAX_LIMIT, paginate
from licentia.server.tenancy.branding import Branding, branding_of
from licentia.server.tenancy.models import Vendor
from licentia.server.web import units
from licentia.server.web.errors import Problems, problem_of
from licentia.server.web.rendering import pages_of
from licentia.server.web.sessions import visitor_of

PAGE_SIZE = 50
HISTORY_SIZE = 100


class LoginNeeded(Exception):  # noqa: N818 - not an error: the visitor is sent to log in
    """Raised by :func:`staff_of` for a visitor not logged in as staff; the console
    answers it with a redirect to its login page (``web/app.py``)."""


def staff_of(request: Request, scope: str) -> Actor:
    """The staff member looking, holding ``scope`` (a role's scopes, as in the API: a
    read-only member holds no ``…:write``). Raises LoginNeeded or PermissionDeniedError."""
    actor = visitor_of(request).staff
    if actor is None:
        raise LoginNeeded
    actor.require(scope)
    return actor


def to_login(request: Request, error: Exception) -> Response:
    return RedirectResponse("/console/login", status_code=303)


def vendor_id_of(actor: Actor) -> str:
    assert actor.vendor_id is not None, "staff always act inside their vendor"
    return actor.vendor_id


def brand_of(request: Request, actor: Actor) -> Branding:
    def work(session: units.DbSession) -> Branding:
        return branding_of(session, session.get_one(Vendor, vendor_id_of(actor)))

    return units.read(request, work)


def render(
    request: Request, actor: Actor, template: str, *, status_code: int = 200, **values: Any
) -> Response:
    """A console page in the vendor's brand; ``can(scope)`` tells the template which
    actions to offer (a form the role cannot use is not shown at all)."""
    return pages_of(request).render(
        request,
        template,
        brand=brand_of(request, actor),
        status_code=status_code,
        actor=actor,
        can=lambda scope: scope in actor.scopes,
        **values,
    )


def problems_of(request: Request, error: LicentiaError, *, field: str | None = None) -> Problems:
    """The form's problems: ``error`` with its code and a sentence in the visitor's
    language, next to ``field`` (or to the field it names itself)."""
    problems = Problems()
    problems.add(problem_of(error, pages_of(request).gettext_for(request).gettext, field=field))
    return problems


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
