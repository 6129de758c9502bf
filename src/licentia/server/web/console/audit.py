"""Console: the audit log. Events filtered by action, object, actor and time (the
filters stay in the address; pages follow the chain's ``seq``), an object's history one
click away, and the chain verified with its result shown. The same use cases as
``api/routes/audit.py``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.audit.models import AuditEvent
from licentia.server.audit.services import AuditFilter, query_events, verify_chain
from licentia.server.db.pagination import paginate
from licentia.server.web import units
from licentia.server.web.console.frame import (
    filters_of,
    limit_of,
    next_page,
    problems_of,
    render,
    require_staff,
    vendor_id_of,
)
from licentia.server.web.errors import Problems
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
FILTERS = ("action", "object_type", "object_id", "actor_id", "since", "until")


def _day(chosen: dict[str, str], name: str, *, next_day: bool = False) -> datetime | None:
    """A day of the filter form as the start of that day (UTC); ``until`` takes the
    whole day it names."""
    text = chosen.get(name)
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError as error:
        raise ValidationError("write a date as YYYY-MM-DD", field=name) from error
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start + timedelta(days=1) if next_day else start


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, cursor: str | None = None) -> Response:
    actor = require_staff(request, "audit:read")
    chosen = filters_of(request, FILTERS)
    problems = Problems()
    items: list[AuditEvent] = []
    cursor_after = None
    try:
        filters = AuditFilter(
            action=chosen.get("action"),
            object_type=chosen.get("object_type"),
            object_id=chosen.get("object_id"),
            actor_id=chosen.get("actor_id"),
            since=_day(chosen, "since"),
            until=_day(chosen, "until", next_day=True),
        )
        query, limit = query_events(vendor_id_of(actor), filters), limit_of(request)
        page = units.read(
            request, lambda s: paginate(s, query, AuditEvent.seq, cursor=cursor, limit=limit)
        )
        items, cursor_after = list(page.items), page.next_cursor
    except LicentiaError as error:
        problems = problems_of(request, error)
    return render(
        request,
        actor,
        "console/audit.html",
        status_code=422 if problems else 200,
        items=items,
        filters=chosen,
        next_page=next_page(request, cursor_after),
        problems=problems,
        report=None,
    )


@router.get("/audit/verify", response_class=HTMLResponse)
def verify(request: Request) -> Response:
    """Check every link of the vendor's chain and show what was found."""
    actor = require_staff(request, "audit:read")
    report = units.read(request, lambda s: verify_chain(s, vendor_id_of(actor)))
    return render(
        request,
        actor,
        "console/audit.html",
        items=[],
        filters={},
        next_page=None,
        problems=Problems(),
        report=report,
    )
