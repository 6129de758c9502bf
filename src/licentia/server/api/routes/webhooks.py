"""Webhook endpoints and their delivery log (docs/integrations.md)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, Field, UrlConstraints

from licentia.domain.webhooks import ALL_EVENTS, EVENT_TYPES
from licentia.server.api.context import Context, require
from licentia.server.api.schemas import (
    CODE,
    IDEMPOTENT,
    NAME,
    Out,
    PageOut,
    PageParams,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.pagination import Page, paginate
from licentia.server.webhooks import services as webhooks
from licentia.server.webhooks.models import WebhookDelivery, WebhookEndpoint

router = APIRouter(tags=["webhooks"], route_class=ThreadedRoute)

Url = Annotated[AnyHttpUrl, UrlConstraints(max_length=2048)]
EventTypes = Annotated[
    list[Annotated[str, Field(max_length=CODE)]],
    Field(
        min_length=1,
        max_length=len(EVENT_TYPES) + 1,
        description=f"events to send: names of the catalogue, or {ALL_EVENTS!r} for all",
    ),
]


class EndpointCreate(BaseModel):
    url: Url
    event_types: EventTypes = [ALL_EVENTS]
    description: str = Field(default="", max_length=NAME)


class EndpointUpdate(BaseModel):
    url: Url | None = None
    event_types: EventTypes | None = None
    description: str | None = Field(default=None, max_length=NAME)
    enabled: bool | None = None


class SecretRotation(BaseModel):
    overlap_seconds: int = Field(
        default=86400,
        ge=0,
        le=int(webhooks.MAX_OVERLAP.total_seconds()),
        description="how long the current secret keeps signing too (at most 7 days)",
    )


class EndpointOut(Out):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    previous_secret_until: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="the signing secret (whsec_…), shown this once")


class AttemptOut(Out):
    at: datetime
    status_code: int | None
    error: str | None
    response_excerpt: str


class DeliveryOut(BaseModel):
    id: str
    endpoint_id: str
    event_id: str
    event_type: str
    payload: dict[str, Any]
    status: str
    attempts: list[AttemptOut]
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime


def _with_secret(issued: webhooks.IssuedSecret) -> EndpointWithSecret:
    shown = EndpointOut.model_validate(issued.endpoint).model_dump()
    return EndpointWithSecret(**shown, secret=issued.secret)


def _delivery_out(view: webhooks.DeliveryView) -> DeliveryOut:
    delivery = view.delivery
    return DeliveryOut(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=view.event.id,
        event_type=view.event.type,
        payload=view.event.payload,
        status=delivery.status,
        attempts=[AttemptOut.model_validate(a) for a in view.attempts],
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


@router.post(
    "/webhook-endpoints",
    status_code=201,
    response_model=EndpointWithSecret,
    openapi_extra=IDEMPOTENT,
)
def create_endpoint(
    body: EndpointCreate, request: Request, ctx: Context = Depends(require("webhooks:write"))
) -> JSONResponse:
    """Register an endpoint; the answer holds its signing secret, shown only here. The
    URL must be a public ``https`` address unless the operator allows more
    (``WEBHOOK_URL_FORBIDDEN``; docs/security.md)."""
    return ctx.create(
        request,
        body,
        lambda s: _with_secret(
            webhooks.create_endpoint(
                s,
                ctx.actor,
                ctx.master,
                url=str(body.url),
                event_types=body.event_types,
                targets=ctx.services.settings.webhook_targets,
                description=body.description,
            )
        ),
    )


@router.get("/webhook-endpoints", response_model=PageOut[EndpointOut])
def list_endpoints(
    page: PageParams = Depends(page_params), ctx: Context = Depends(require("webhooks:read"))
) -> PageOut[EndpointOut]:
    query = webhooks.endpoints_query(ctx.actor)
    return ctx.read(
        lambda s: page_of(
            paginate(s, query, WebhookEndpoint.id, cursor=page.cursor, limit=page.limit),
            EndpointOut.model_validate,
        )
    )


@router.get("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def get_endpoint(endpoint_id: str, ctx: Context = Depends(require("webhooks:read"))) -> EndpointOut:
    return ctx.read(
        lambda s: EndpointOut.model_validate(webhooks.get_endpoint(s, ctx.actor, endpoint_id))
    )


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=EndpointOut)
def update_endpoint(
    endpoint_id: str, body: EndpointUpdate, ctx: Context = Depends(require("webhooks:write"))
) -> EndpointOut:
    """Change the URL, filter or description; ``enabled: true`` turns an endpoint that
    was disabled (by the vendor, or after failing for a day) back on."""
    changes = body.model_dump(exclude_unset=True)
    if body.url is not None:
        changes["url"] = str(body.url)
    return ctx.write(
        lambda s: EndpointOut.model_validate(
            webhooks.update_endpoint(
                s, ctx.actor, endpoint_id, changes, targets=ctx.services.settings.webhook_targets
            )
        )
    )


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(
    endpoint_id: str, ctx: Context = Depends(require("webhooks:write"))
) -> Response:
    ctx.write(lambda s: webhooks.delete_endpoint(s, ctx.actor, endpoint_id))
    return Response(status_code=204)


@router.post(
    "/webhook-endpoints/{endpoint_id}/actions/rotate-secret", response_model=EndpointWithSecret
)
def rotate_secret(
    endpoint_id: str, body: SecretRotation, ctx: Context = Depends(require("webhooks:write"))
) -> EndpointWithSecret:
    """A new signing secret, shown this once; the current one keeps signing too for
    ``overlap_seconds`` (at most 7 days)."""
    overlap = timedelta(seconds=body.overlap_seconds)
    return ctx.write(
        lambda s: _with_secret(
            webhooks.rotate_secret(s, ctx.actor, ctx.master, endpoint_id, overlap=overlap)
        )
    )


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", response_model=PageOut[DeliveryOut])
def list_deliveries(
    endpoint_id: str,
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("webhooks:read")),
) -> PageOut[DeliveryOut]:
    """The endpoint's delivery log, oldest first: each event, its status and attempts."""

    def work(s: Any) -> PageOut[DeliveryOut]:
        webhooks.get_endpoint(s, ctx.actor, endpoint_id)
        query = webhooks.deliveries_query(ctx.actor, endpoint_id)
        found = paginate(s, query, WebhookDelivery.id, cursor=page.cursor, limit=page.limit)
        views = webhooks.delivery_views(s, list(found.items))
        return page_of(Page(views, found.next_cursor, found.after), _delivery_out)

    return ctx.read(work)


@router.get("/webhook-deliveries/{delivery_id}", response_model=DeliveryOut)
def get_delivery(delivery_id: str, ctx: Context = Depends(require("webhooks:read"))) -> DeliveryOut:
    return ctx.read(lambda s: _delivery_out(webhooks.get_delivery(s, ctx.actor, delivery_id)))


@router.post(
    "/webhook-deliveries/{delivery_id}/actions/replay", status_code=201, response_model=DeliveryOut
)
def replay_delivery(
    delivery_id: str, ctx: Context = Depends(require("webhooks:write"))
) -> DeliveryOut:
    """Send the delivery's event to its endpoint again, as a new delivery due now."""
    return ctx.write(lambda s: _delivery_out(webhooks.replay_delivery(s, ctx.actor, delivery_id)))


class FailedReplay(BaseModel):
    since: AwareDatetime | None = Field(
        default=None, description="only events that happened at or after this time"
    )
    until: AwareDatetime | None = Field(default=None, description="only events before this time")


class FailedReplayOut(BaseModel):
    replayed: int = Field(description="events sent again by this call")
    more: bool = Field(
        description=f"more failed events of the range are left (at most "
        f"{webhooks.BULK_REPLAY_LIMIT} per call): call again"
    )


@router.post(
    "/webhook-endpoints/{endpoint_id}/actions/replay-failed", response_model=FailedReplayOut
)
def replay_failed(
    endpoint_id: str, body: FailedReplay, ctx: Context = Depends(require("webhooks:write"))
) -> FailedReplayOut:
    """Send again every event whose delivery to this endpoint failed, optionally within
    ``[since, until)``, oldest first, as new deliveries due now. Idempotent: an event
    pending or delivered to the endpoint is not sent again, so a repeated call adds
    nothing while the replays wait."""
    result = ctx.write(
        lambda s: webhooks.replay_failed(
            s, ctx.actor, endpoint_id, since=body.since, until=body.until
        )
    )
    return FailedReplayOut(replayed=result.replayed, more=result.more)
