"""Console: the vendor's web shops (Stripe, Paddle). Connect a shop with its signing
secret and choose what a refund or a cancellation does; map the shop's price or
product ids to SKUs; see the events received, those that failed with the reason. The
same use cases as ``api/routes/shops.py``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError
from licentia.domain.shops import Provider, RevocationAction
from licentia.server.db.pagination import paginate
from licentia.server.shops import services as shops
from licentia.server.shops.models import ShopMapping
from licentia.server.web import units
from licentia.server.web.console.frame import problems_of, render, require_staff
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
SHOWN = 50  # mappings and events on the page; the API pages through all of them


def _page(
    request: Request,
    actor: Actor,
    *,
    problems: Problems | None = None,
    form: str | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    def gather(s: Any) -> dict[str, Any]:
        mappings = paginate(
            s, shops.mappings_query(actor), ShopMapping.id, cursor=None, limit=SHOWN
        )
        events = shops.recent_events(s, actor, SHOWN)
        return {
            "connected": {x.provider: x for x in shops.list_settings(s, actor)},
            "slug": shops.vendor_slug(s, actor),
            "mappings": mappings.items,
            "events": events,
            "tickets": shops.tickets_of_events(s, events),
        }

    shown = units.read(request, gather)
    base = units.backend_of(request).settings.public_url.rstrip("/")
    response = render(
        request,
        actor,
        "console/shops.html",
        status_code=status_code,
        providers=[p.value for p in Provider],
        actions=[a.value for a in RevocationAction],
        events_url=lambda provider: (
            f"{base}/api/v1/vendors/{shown['slug']}/shops/{provider}/events"
        ),
        problems=problems or Problems(),
        form=form,
        values=values or {},
        done=request.query_params.get("done"),
        **shown,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/shops", response_class=HTMLResponse)
def shops_page(request: Request) -> Response:
    return _page(request, require_staff(request, "shops:read"))


@router.post("/shops/{provider}", response_class=HTMLResponse)
def save_shop(
    provider: str,
    request: Request,
    signing_secret: str = Form(""),
    refund_action: str = Form(""),
    cancel_action: str = Form(""),
    enabled: str = Form(""),
) -> Response:
    actor = require_staff(request, "shops:write")
    master = units.backend_of(request).master
    changes: dict[str, Any] = {
        "refund_action": refund_action or None,
        "cancel_action": cancel_action or None,
        "enabled": enabled == "on",
    }
    if signing_secret.strip():
        changes["signing_secret"] = signing_secret
    try:
        units.write(request, lambda s: shops.put_settings(s, actor, master, provider, changes))
    except LicentiaError as error:
        values = {"refund_action": refund_action, "cancel_action": cancel_action}
        return _page(
            request,
            actor,
            problems=problems_of(request, error),
            form=provider,
            values=values,
            status_code=status_of(error),
        )
    return RedirectResponse("/console/shops?done=saved", status_code=303)


@router.post("/shop-mappings", response_class=HTMLResponse)
def create_mapping(
    request: Request,
    provider: str = Form(""),
    provider_ref: str = Form(""),
    sku: str = Form(""),
) -> Response:
    actor = require_staff(request, "shops:write")
    try:
        units.write(
            request,
            lambda s: shops.create_mapping(
                s, actor, provider=provider, provider_ref=provider_ref, sku=sku.strip()
            ),
        )
    except LicentiaError as error:
        values = {"provider": provider, "provider_ref": provider_ref, "sku": sku}
        return _page(
            request,
            actor,
            problems=problems_of(request, error),
            form="mapping",
            values=values,
            status_code=status_of(error),
        )
    return RedirectResponse("/console/shops?done=mapped", status_code=303)


@router.post("/shop-mappings/{mapping_id}/delete", response_class=HTMLResponse)
def delete_mapping(mapping_id: str, request: Request) -> Response:
    actor = require_staff(request, "shops:write")
    units.write(request, lambda s: shops.delete_mapping(s, actor, mapping_id))
    return RedirectResponse("/console/shops?done=unmapped", status_code=303)
