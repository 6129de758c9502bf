"""A license's subscription: renewed or cancelled by the vendor's ERP (or any system
holding an API key), idempotently by the caller's own id of the renewal."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field

from licentia.server.api.context import Context, require
from licentia.server.api.routes.licenses import LicenseOut, license_out
from licentia.server.api.schemas import Identifier, Out
from licentia.server.api.threads import ThreadedRoute
from licentia.server.subscriptions import services as subscriptions

router = APIRouter(tags=["subscriptions"], route_class=ThreadedRoute)
SOURCE = "api"  # the source of the renewals and cancellations sent to these routes


class RenewIn(BaseModel):
    external_id: Identifier = Field(
        description="your system's id of this renewal (an invoice number): the same id "
        "again renews nothing and answers the first renewal with replayed true",
    )
    paid_until: AwareDatetime | None = Field(
        default=None,
        description="the end of the period paid; without it, one period after the "
        "current paid end. Not later than the current paid end: nothing is renewed",
    )


class CancelIn(BaseModel):
    external_id: Identifier | None = Field(default=None, description="your id of it")


class RenewalOut(Out):
    id: str
    source: str
    external_id: str | None
    paid_from: datetime
    paid_until: datetime
    created_at: datetime


class RenewedOut(Out):
    license: LicenseOut
    renewal: RenewalOut | None = Field(
        description="the period paid (for a replay: the one the first request paid); "
        "null if the license was already paid that far"
    )
    replayed: bool = Field(description="this external_id renewed the license before")


def _renewed(result: subscriptions.RenewalResult) -> RenewedOut:
    renewal = result.renewal
    return RenewedOut(
        license=license_out(result.license),
        renewal=None if renewal is None else RenewalOut.model_validate(renewal),
        replayed=result.replayed,
    )


@router.post(
    "/licenses/{license_id}/subscription/actions/renew",
    response_model=RenewedOut,
    responses={
        409: {
            "description": "NOT_A_SUBSCRIPTION, SUBSCRIPTION_CANCELLED, "
            "ILLEGAL_TRANSITION (withdrawn or replaced)"
        }
    },
)
def renew_subscription(
    license_id: str, body: RenewIn, ctx: Context = Depends(require("licenses:write"))
) -> RenewedOut:
    """Pay one more period of a subscription license (or up to ``paid_until``): its
    validity moves with it, devices get it at their next sync, cloud tokens at once,
    and a ``subscription.renewed`` event is sent once. Sending the same
    ``external_id`` again, even at the same moment, renews once."""

    return ctx.write(
        lambda s: _renewed(
            subscriptions.renew_subscription(
                s,
                ctx.actor,
                license_id,
                source=SOURCE,
                external_id=body.external_id,
                paid_until=body.paid_until,
            )
        )
    )


@router.post(
    "/licenses/{license_id}/subscription/actions/cancel",
    response_model=LicenseOut,
    responses={409: {"description": "NOT_A_SUBSCRIPTION"}},
)
def cancel_subscription(
    license_id: str,
    body: CancelIn | None = None,
    ctx: Context = Depends(require("licenses:write")),
) -> LicenseOut:
    """Stop renewing: the license runs to the end of its paid period, without grace,
    and a ``subscription.cancelled`` event is sent. Cancelling again changes nothing."""
    external_id = body.external_id if body is not None else None
    return ctx.write(
        lambda s: license_out(
            subscriptions.cancel_subscription(
                s, ctx.actor, license_id, source=SOURCE, external_id=external_id
            )
        )
    )
