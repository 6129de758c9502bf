"""Console: webhook endpoints. A list with the form that registers one (its URL, the
events it wants) and shows its signing secret on that one answer; an endpoint's page
with its facts, its actions (enable or disable, rotate the secret, delete, send every
failed event again) and its delivery log, each delivery with the request's body and
the receiver's answer, and a button to send it again. The same use cases as
``api/routes/webhooks.py``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, ValidationError
from licentia.domain.webhooks import ALL_EVENTS, EVENT_TYPES
from licentia.server.db.pagination import paginate
from licentia.server.web import units
from licentia.server.web.console.frame import (
    limit_of,
    next_page,
    problems_of,
    render,
    require_staff,
)
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.webhooks import services as webhooks
from licentia.server.webhooks.models import WebhookDelivery, WebhookEndpoint

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
PAYLOAD_EXCERPT = 500  # characters of a request's body the log shows


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _list_page(
    request: Request,
    actor: Actor,
    *,
    cursor: str | None = None,
    problems: Problems | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    query, limit = webhooks.endpoints_query(actor), limit_of(request)
    page = units.read(
        request, lambda s: paginate(s, query, WebhookEndpoint.id, cursor=cursor, limit=limit)
    )
    return render(
        request,
        actor,
        "console/webhooks.html",
        status_code=status_code,
        items=page.items,
        next_page=next_page(request, page.next_cursor),
        event_types=EVENT_TYPES,
        all_events=ALL_EVENTS,
        problems=problems or Problems(),
        values=values or {"url": "", "description": "", "event_types": [ALL_EVENTS]},
        done=request.query_params.get("done"),
    )


@router.get("/webhooks", response_class=HTMLResponse)
def endpoint_list(request: Request, cursor: str | None = None) -> Response:
    actor = require_staff(request, "webhooks:read")
    return _list_page(request, actor, cursor=cursor)


@router.post("/webhooks", response_class=HTMLResponse)
def create_endpoint(
    request: Request,
    url: str = Form(""),
    description: str = Form(""),
    event_types: list[str] = Form([]),
) -> Response:
    actor = require_staff(request, "webhooks:write")
    backend = units.backend_of(request)
    try:
        _check_url(url)
        issued = units.write(
            request,
            lambda s: webhooks.create_endpoint(
                s,
                actor,
                backend.master,
                url=url.strip(),
                event_types=event_types,
                targets=backend.settings.webhook_targets,
                description=description.strip()[:200],
            ),
        )
    except LicentiaError as error:
        values = {"url": url, "description": description, "event_types": event_types}
        problems = problems_of(request, error)
        return _list_page(
            request, actor, problems=problems, values=values, status_code=status_of(error)
        )
    return _no_store(_detail(request, issued.endpoint.id, secret=issued.secret, status_code=201))


def _check_url(url: str) -> None:
    """What the API's URL type checks before the service's rules (docs/integrations.md)."""
    if not url.strip().lower().startswith(("https://", "http://")) or len(url) > 2048:
        raise ValidationError("an http(s) address of at most 2048 characters", field="url")


def _detail(
    request: Request,
    endpoint_id: str,
    *,
    cursor: str | None = None,
    secret: str | None = None,
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    actor = require_staff(request, "webhooks:read")
    limit = limit_of(request)

    def work(session: units.DbSession) -> dict[str, Any]:
        endpoint = webhooks.get_endpoint(session, actor, endpoint_id)
        query = webhooks.deliveries_query(actor, endpoint.id)
        found = paginate(session, query, WebhookDelivery.id, cursor=cursor, limit=limit)
        return {
            "item": endpoint,
            "deliveries": webhooks.delivery_views(session, list(found.items)),
            "next_page": _log_page(endpoint.id, found.next_cursor),
        }

    return render(
        request,
        actor,
        "console/webhook.html",
        status_code=status_code,
        secret=secret,
        problems=problems or Problems(),
        done=request.query_params.get("done"),
        replayed=request.query_params.get("replayed"),
        excerpt=PAYLOAD_EXCERPT,
        **units.read(request, work),
    )


@router.get("/webhooks/{endpoint_id}", response_class=HTMLResponse)
def endpoint_detail(endpoint_id: str, request: Request, cursor: str | None = None) -> Response:
    return _detail(request, endpoint_id, cursor=cursor)


@router.post("/webhooks/{endpoint_id}/rotate", response_class=HTMLResponse)
def rotate_secret(endpoint_id: str, request: Request, overlap_hours: str = Form("24")) -> Response:
    actor = require_staff(request, "webhooks:write")
    master = units.backend_of(request).master
    try:
        overlap = timedelta(hours=_number(overlap_hours, "overlap_hours"))
        issued = units.write(
            request,
            lambda s: webhooks.rotate_secret(s, actor, master, endpoint_id, overlap=overlap),
        )
    except LicentiaError as error:
        problems = problems_of(request, error, field="overlap_hours")
        return _detail(request, endpoint_id, problems=problems, status_code=status_of(error))
    return _no_store(_detail(request, endpoint_id, secret=issued.secret))


@router.post("/webhooks/{endpoint_id}/replay-failed", response_class=HTMLResponse)
def replay_failed(
    endpoint_id: str, request: Request, since: str = Form(""), until: str = Form("")
) -> Response:
    actor = require_staff(request, "webhooks:write")
    try:
        start, end = _day(since, "since"), _day(until, "until", end=True)
        result = units.write(
            request,
            lambda s: webhooks.replay_failed(s, actor, endpoint_id, since=start, until=end),
        )
    except LicentiaError as error:
        problems = problems_of(request, error)
        return _detail(request, endpoint_id, problems=problems, status_code=status_of(error))
    more = "&more=1" if result.more else ""
    return RedirectResponse(
        f"/console/webhooks/{endpoint_id}?done=replayed&replayed={result.replayed}{more}",
        status_code=303,
    )


@router.post("/webhook-deliveries/{delivery_id}/replay", response_class=HTMLResponse)
def replay_delivery(delivery_id: str, request: Request) -> Response:
    actor = require_staff(request, "webhooks:write")
    view = units.write(request, lambda s: webhooks.replay_delivery(s, actor, delivery_id))
    endpoint_id = view.delivery.endpoint_id
    return RedirectResponse(f"/console/webhooks/{endpoint_id}?done=replayed-one", status_code=303)


# Declared after the fixed actions above: its path would match theirs.
@router.post("/webhooks/{endpoint_id}/{action}", response_class=HTMLResponse)
def act_on_endpoint(
    endpoint_id: str, action: Literal["enable", "disable", "delete"], request: Request
) -> Response:
    actor = require_staff(request, "webhooks:write")
    if action == "delete":
        units.write(request, lambda s: webhooks.delete_endpoint(s, actor, endpoint_id))
        return RedirectResponse("/console/webhooks?done=deleted", status_code=303)
    targets = units.backend_of(request).settings.webhook_targets
    changes = {"enabled": action == "enable"}
    units.write(
        request,
        lambda s: webhooks.update_endpoint(s, actor, endpoint_id, changes, targets=targets),
    )
    return RedirectResponse(f"/console/webhooks/{endpoint_id}?done={action}", status_code=303)


def _log_page(endpoint_id: str, cursor: str | None) -> str | None:
    """The delivery log's next page (also from a form's answer, whose address is not
    the endpoint's page)."""
    return None if cursor is None else f"/console/webhooks/{endpoint_id}?cursor={cursor}"


def _number(text: str, field: str) -> float:
    try:
        return float(text.strip() or "0")
    except ValueError as error:
        raise ValidationError("a number of hours", field=field) from error


def _day(text: str, field: str, *, end: bool = False) -> datetime | None:
    """A date of the form (``YYYY-MM-DD``, UTC): its start, or for ``end`` the next
    day's start, so that a range of days includes its last day."""
    if not text.strip():
        return None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError as error:
        raise ValidationError("a date such as 2026-12-03", field=field) from error
    return day + timedelta(days=1) if end else day
