"""Licenses, the vendor's actions on them, and their signed documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from licentia.domain.licenses import LicenseState
from licentia.server.api.context import Context, require
from licentia.server.api.hot import hot
from licentia.server.api.schemas import (
    CODE,
    ID,
    JOSE,
    Out,
    PageOut,
    PageParams,
    jose_answer,
    json_of,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.base import utcnow
from licentia.server.db.pagination import paginate
from licentia.server.licenses import services as licenses
from licentia.server.licenses.models import License

router = APIRouter(tags=["licenses"], route_class=ThreadedRoute)


class SubscriptionOut(Out):
    period: str = Field(description="monthly, yearly or days")
    days: int | None = Field(description="the period's length, for a period of days")
    automatic: bool = Field(description="Licentia renews it each period until cancelled")
    grace_days: int = Field(description="valid this long past paid_until if a renewal is late")
    paid_until: datetime = Field(description="the end of the paid period")
    cancelled_at: datetime | None
    next_renewal_at: datetime | None = Field(
        description="when the next renewal is due (automatic) or expected; null once cancelled"
    )
    status: str = Field(description="active, grace (renewal late), cancelled or ended")


class LicenseOut(Out):
    id: str
    ticket_id: str
    template_id: str
    customer_id: str | None
    product_code: str
    features: list[str]
    state: str
    issued_at: datetime
    valid_until: datetime | None
    maintenance_until: datetime | None
    activated_at: datetime | None
    replaced_by_id: str | None
    device_id: str | None = Field(
        description="the device that holds the license (GET /devices/{id}); null if none"
    )
    container_id: str | None = Field(
        description="the cloud container that holds the license; null if none"
    )
    version: int
    options: dict[str, Any]
    subscription: SubscriptionOut | None = Field(
        description="the license's subscription (docs/api.md#subscriptions); null if none"
    )


class ExtendIn(BaseModel):
    # Aware only: a naive time would be a guess at the caller's zone.
    until: AwareDatetime | None = Field(default=None, description="new end of validity")
    days: int | None = Field(
        default=None, le=36_500, description="or: add this many days (at most 100 years)"
    )


class ReplaceIn(BaseModel):
    sku: str | None = Field(
        default=None, max_length=CODE, description="issue the successor from this template"
    )


_COMPUTED = ("state", "subscription")


def license_out(license_: License | licenses.LicenseRow) -> LicenseOut:
    data = {
        name: getattr(license_, name) for name in LicenseOut.model_fields if name not in _COMPUTED
    }
    now = utcnow()
    subscription = licenses.subscription_of(license_, now)
    return LicenseOut(
        **data,
        state=licenses.state_of(license_, now).value,
        subscription=None if subscription is None else SubscriptionOut.model_validate(subscription),
    )


@router.get("/licenses", response_model=PageOut[LicenseOut])
def list_licenses(
    ticket_id: str | None = Query(None, max_length=ID),
    customer_id: str | None = Query(None, max_length=ID),
    state: str | None = Query(
        None,
        max_length=CODE,
        description="available, activated, returned, suspended, withdrawn, replaced or expired",
        json_schema_extra={"enum": [state.value for state in LicenseState]},
    ),
    product_code: str | None = Query(None, max_length=CODE),
    device_id: str | None = Query(None, max_length=ID, description="the licenses a device holds"),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("licenses:read")),
) -> PageOut[LicenseOut]:
    filters = licenses.LicenseFilter(ticket_id, customer_id, state, product_code, device_id)
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                licenses.licenses_query(ctx.actor, filters),
                License.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            license_out,
        )
    )


@router.get("/licenses/{license_id}", response_model=LicenseOut)
@hot  # a vendor's ERP reads licenses by id more than anything else
async def get_license(
    license_id: str, ctx: Context = Depends(require("licenses:read"))
) -> Response:
    """Several reads that arrive together go out in one statement (licenses/reads.py)."""
    row = await ctx.services.license_reads.read(ctx.vendor_id, license_id)
    return json_of(license_out(row))


@router.post("/licenses/{license_id}/actions/extend", response_model=LicenseOut)
def extend_license(
    license_id: str, body: ExtendIn, ctx: Context = Depends(require("licenses:write"))
) -> LicenseOut:
    return ctx.write(
        lambda s: license_out(
            licenses.extend_license(s, ctx.actor, license_id, until=body.until, days=body.days)
        )
    )


@router.post("/licenses/{license_id}/actions/replace", response_model=LicenseOut)
def replace_license(
    license_id: str,
    body: ReplaceIn | None = None,
    ctx: Context = Depends(require("licenses:write")),
) -> LicenseOut:
    """Returns the successor license; the old one becomes ``replaced``. Without a body
    (or without ``sku``) the successor comes from the same template."""
    sku = body.sku if body is not None else None
    return ctx.write(
        lambda s: license_out(licenses.replace_license(s, ctx.actor, license_id, sku=sku))
    )


@router.get(
    "/licenses/{license_id}/document",
    response_class=Response,
    responses={
        **jose_answer("the signed license document (docs/formats.md)"),
        409: {"description": "LICENSE_NOT_USABLE or NO_SIGNING_KEY: no document to sign"},
    },
)
def license_document(license_id: str, ctx: Context = Depends(require("licenses:read"))) -> Response:
    """The license as a signed document (compact JWS, ``typ`` licentia-license+jwt)."""
    document = ctx.read(lambda s: licenses.render_document(s, ctx.actor, ctx.master, license_id))
    return Response(document, media_type=JOSE)


@router.post("/licenses/{license_id}/actions/{action}", response_model=LicenseOut)
def change_state(
    license_id: str,
    action: Literal["suspend", "resume", "withdraw"],
    ctx: Context = Depends(require("licenses:write")),
) -> LicenseOut:
    """Suspend, resume or withdraw; 409 ``ILLEGAL_TRANSITION`` names the current state.

    Registered last so that ``extend`` and ``replace`` match their own routes first.
    """
    return ctx.write(lambda s: license_out(licenses.change_state(s, ctx.actor, license_id, action)))
