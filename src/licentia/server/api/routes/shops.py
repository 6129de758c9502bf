"""Web shops (docs/integrations.md, "Web shops"): the events Stripe and Paddle send,
signed by the shop, and the vendor's shop settings, mappings and event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from licentia.domain.shops import Provider, RevocationAction
from licentia.server.api.bodies import SHOP_EVENT
from licentia.server.api.context import Context, Services, app_services, require
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
from licentia.server.api.threads import ThreadedRoute, blocking
from licentia.server.db.pagination import paginate
from licentia.server.shops import receiving
from licentia.server.shops import services as shops
from licentia.server.shops.models import ShopEvent, ShopMapping
from licentia.server.shops.paddle_events import SIGNATURE_HEADER as PADDLE_SIGNATURE
from licentia.server.shops.stripe_events import SIGNATURE_HEADER as STRIPE_SIGNATURE

router = APIRouter(tags=["shops"], route_class=ThreadedRoute)
event_router = APIRouter(tags=["shop events"], max_body_size=SHOP_EVENT)

_EVENT_BODY: dict[str, Any] = {
    "requestBody": {
        "content": {"application/json": {"schema": {"type": "object", "maxProperties": 64}}},
        "required": True,
        "description": "the event exactly as the shop sent it (its signature covers the raw body)",
    }
}
MAX_SIGNATURE = 2048


class ReceiptOut(BaseModel):
    status: str = Field(description="processed, replayed (processed before) or ignored")
    event_id: str
    event_type: str
    outcome: str | None = Field(
        description="order_created, lines_added, renewed, unchanged, licenses_suspended,"
        " licenses_withdrawn, subscription_cancelled, no_action or no_order"
    )
    order_id: str | None
    detail: str | None = Field(description="why an event was ignored")


async def _receive(
    services: Services, provider: Provider, slug: str, request: Request, signature: str | None
) -> JSONResponse:
    body = await request.body()
    receipt = await blocking(
        receiving.receive, services.db, services.master, provider, slug, body, signature
    )
    return JSONResponse(ReceiptOut.model_validate(receipt, from_attributes=True).model_dump())


@event_router.post(
    "/vendors/{slug}/shops/stripe/events", response_model=ReceiptOut, openapi_extra=_EVENT_BODY
)
async def receive_stripe_event(
    slug: str,
    request: Request,
    stripe_signature: str | None = Header(None, alias=STRIPE_SIGNATURE, max_length=MAX_SIGNATURE),
    services: Services = Depends(app_services),
) -> JSONResponse:
    """Stripe's webhook endpoint for this vendor: ``checkout.session.completed`` and
    ``invoice.paid`` place orders, ``charge.refunded`` and
    ``customer.subscription.deleted`` act on their licenses. Each event counts once."""
    return await _receive(services, Provider.STRIPE, slug, request, stripe_signature)


@event_router.post(
    "/vendors/{slug}/shops/paddle/events", response_model=ReceiptOut, openapi_extra=_EVENT_BODY
)
async def receive_paddle_event(
    slug: str,
    request: Request,
    paddle_signature: str | None = Header(None, alias=PADDLE_SIGNATURE, max_length=MAX_SIGNATURE),
    services: Services = Depends(app_services),
) -> JSONResponse:
    """Paddle's notification destination for this vendor: ``transaction.completed``
    places orders, ``subscription.canceled`` and refund adjustments act on their
    licenses. Each event counts once."""
    return await _receive(services, Provider.PADDLE, slug, request, paddle_signature)


# --- settings --------------------------------------------------------------------------


class ShopPut(BaseModel):
    signing_secret: str | None = Field(
        default=None,
        min_length=8,
        max_length=shops.MAX_SECRET,
        description="the shop's webhook signing secret (write-only; needed to connect)",
    )
    refund_action: RevocationAction | None = Field(
        default=None, description="what a refund does to the order's licenses"
    )
    cancel_action: RevocationAction | None = Field(
        default=None, description="what a cancelled subscription does to its licenses"
    )
    enabled: bool | None = None


class ShopOut(BaseModel):
    provider: str
    refund_action: str
    cancel_action: str
    enabled: bool
    events_url: str = Field(description="where the shop sends its events")
    created_at: datetime
    updated_at: datetime


def _shop_out(ctx: Context, settings: Any, slug: str) -> ShopOut:
    base = ctx.services.settings.public_url.rstrip("/")
    return ShopOut(
        provider=settings.provider,
        refund_action=settings.refund_action,
        cancel_action=settings.cancel_action,
        enabled=settings.enabled,
        events_url=f"{base}/api/v1/vendors/{slug}/shops/{settings.provider}/events",
        created_at=settings.created_at,
        updated_at=settings.updated_at,
    )


@router.put(
    "/shops/{provider}",
    response_model=ShopOut,
    responses={201: {"model": ShopOut, "description": "the shop was connected now"}},
)
def put_shop(
    provider: str, body: ShopPut, ctx: Context = Depends(require("shops:write"))
) -> JSONResponse:
    """Connect the shop (``stripe`` or ``paddle``) with its signing secret, or change
    its settings; the secret is never shown again."""
    changes = body.model_dump(exclude_unset=True, mode="json")

    def work(s: Any) -> tuple[ShopOut, bool]:
        settings, created = shops.put_settings(s, ctx.actor, ctx.master, provider, changes)
        return _shop_out(ctx, settings, shops.vendor_slug(s, ctx.actor)), created

    shown, created = ctx.write(work)
    return JSONResponse(shown.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/shops/{provider}", response_model=ShopOut)
def get_shop(provider: str, ctx: Context = Depends(require("shops:read"))) -> ShopOut:
    return ctx.read(
        lambda s: _shop_out(
            ctx, shops.get_settings(s, ctx.actor, provider), shops.vendor_slug(s, ctx.actor)
        )
    )


@router.delete("/shops/{provider}", status_code=204)
def delete_shop(provider: str, ctx: Context = Depends(require("shops:write"))) -> Response:
    """Disconnect the shop: its events are refused from now on (mappings stay)."""
    ctx.write(lambda s: shops.disconnect(s, ctx.actor, provider))
    return Response(status_code=204)


# --- mappings --------------------------------------------------------------------------


class MappingCreate(BaseModel):
    provider: Provider
    provider_ref: str = Field(
        min_length=1, max_length=NAME, description="the shop's price id (or product id)"
    )
    sku: str = Field(min_length=1, max_length=CODE)


class MappingUpdate(BaseModel):
    sku: str = Field(min_length=1, max_length=CODE)


class MappingOut(Out):
    id: str
    provider: str
    provider_ref: str
    sku: str
    created_at: datetime
    updated_at: datetime


@router.post("/shop-mappings", status_code=201, response_model=MappingOut, openapi_extra=IDEMPOTENT)
def create_mapping(
    body: MappingCreate, request: Request, ctx: Context = Depends(require("shops:write"))
) -> JSONResponse:
    """Map a shop's price or product id to a SKU: its sales become order lines of it."""
    return ctx.create(
        request,
        body,
        lambda s: MappingOut.model_validate(
            shops.create_mapping(
                s,
                ctx.actor,
                provider=body.provider.value,
                provider_ref=body.provider_ref,
                sku=body.sku,
            )
        ),
    )


@router.get("/shop-mappings", response_model=PageOut[MappingOut])
def list_mappings(
    provider: Provider | None = Query(None, description="one shop's mappings"),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("shops:read")),
) -> PageOut[MappingOut]:
    query = shops.mappings_query(ctx.actor, provider.value if provider else None)
    return ctx.read(
        lambda s: page_of(
            paginate(s, query, ShopMapping.id, cursor=page.cursor, limit=page.limit),
            MappingOut.model_validate,
        )
    )


@router.get("/shop-mappings/{mapping_id}", response_model=MappingOut)
def get_mapping(mapping_id: str, ctx: Context = Depends(require("shops:read"))) -> MappingOut:
    return ctx.read(
        lambda s: MappingOut.model_validate(shops.get_mapping(s, ctx.actor, mapping_id))
    )


@router.patch("/shop-mappings/{mapping_id}", response_model=MappingOut)
def update_mapping(
    mapping_id: str, body: MappingUpdate, ctx: Context = Depends(require("shops:write"))
) -> MappingOut:
    return ctx.write(
        lambda s: MappingOut.model_validate(
            shops.update_mapping(s, ctx.actor, mapping_id, sku=body.sku)
        )
    )


@router.delete("/shop-mappings/{mapping_id}", status_code=204)
def delete_mapping(mapping_id: str, ctx: Context = Depends(require("shops:write"))) -> Response:
    ctx.write(lambda s: shops.delete_mapping(s, ctx.actor, mapping_id))
    return Response(status_code=204)


# --- the event log ---------------------------------------------------------------------


class ShopEventOut(Out):
    id: str
    provider: str
    event_id: str = Field(description="the shop's id of the event")
    event_type: str
    status: str = Field(description="processed, or failed (the shop sends it again)")
    outcome: str | None
    order_id: str | None
    error_code: str | None
    error_message: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime


@router.get("/shop-events", response_model=PageOut[ShopEventOut])
def list_shop_events(
    provider: Provider | None = Query(None, description="one shop's events"),
    status: str | None = Query(
        None, max_length=CODE, json_schema_extra={"enum": list(shops.EVENT_STATUSES)}
    ),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("shops:read")),
) -> PageOut[ShopEventOut]:
    """The events the vendor's shops sent, oldest first; ``status=failed`` lists those
    that could not be carried out, with the reason."""

    def work(s: Any) -> PageOut[ShopEventOut]:
        query = shops.events_query(
            ctx.actor, provider=provider.value if provider else None, status=status
        )
        found = paginate(s, query, ShopEvent.id, cursor=page.cursor, limit=page.limit)
        return page_of(found, ShopEventOut.model_validate)

    return ctx.read(work)


@router.get("/shop-events/{shop_event_id}", response_model=ShopEventOut)
def get_shop_event(
    shop_event_id: str, ctx: Context = Depends(require("shops:read"))
) -> ShopEventOut:
    return ctx.read(
        lambda s: ShopEventOut.model_validate(shops.get_event(s, ctx.actor, shop_event_id))
    )
