"""The vendor's side of cloud containers, seats and counters."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from licentia.domain.templates import OPTION_DEFAULTS, MaxDevices
from licentia.server.api.context import Context, require
from licentia.server.api.schemas import (
    CODE,
    ID,
    IDEMPOTENT,
    Out,
    PageOut,
    PageParams,
    TypedTicketCode,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.cloud import services as cloud
from licentia.server.cloud.models import CloudContainer
from licentia.server.counters import services as counters
from licentia.server.db.base import utcnow
from licentia.server.db.pagination import paginate
from licentia.server.licenses.services import get_license
from licentia.server.seats import services as seats
from licentia.server.seats.models import SeatEvent, SeatSlot

router = APIRouter(tags=["cloud"], route_class=ThreadedRoute)


class ContainerCreate(BaseModel):
    customer_id: str | None = Field(default=None, max_length=ID)
    name: str = Field(min_length=1, max_length=200)
    max_devices: MaxDevices = OPTION_DEFAULTS.max_devices


class CloudDeviceOut(Out):
    id: str
    name: str
    created_at: datetime
    last_seen_at: datetime | None
    deregistered_at: datetime | None


class ContainerOut(Out):
    id: str
    customer_id: str | None
    name: str
    max_devices: int
    credential_version: int
    created_at: datetime


class ContainerDetail(ContainerOut):
    devices: list[CloudDeviceOut]
    license_ids: list[str]


class ContainerCredential(ContainerOut):
    credential: str = Field(description="the .licred secret; shown this once")


class RedeemIn(BaseModel):
    ticket: TypedTicketCode


class SeatOut(BaseModel):
    lease_id: str | None
    slot: int
    user: str | None
    device: str | None
    process: str | None
    acquired_at: datetime | None
    expires_at: datetime | None
    borrowed: bool


class SeatEventOut(Out):
    kind: str
    lease_id: str | None
    holder_key: str | None
    in_use: int
    at: datetime


class UnitsIn(BaseModel):
    units: int = Field(ge=0, le=10**12)


class LedgerOut(Out):
    kind: str
    delta: int
    balance_after: int
    key: str
    at: datetime


class UnitsOut(BaseModel):
    license_id: str
    balance: int
    recomputed_from_ledger: int
    ledger: list[LedgerOut]


def _credential(issued: cloud.IssuedCredential) -> ContainerCredential:
    return ContainerCredential(
        **ContainerOut.model_validate(issued.container).model_dump(), credential=issued.credential
    )


def _detail(view: cloud.ContainerView) -> ContainerDetail:
    return ContainerDetail(
        **ContainerOut.model_validate(view.container).model_dump(),
        devices=[CloudDeviceOut.model_validate(d) for d in view.devices],
        license_ids=view.license_ids,
    )


def _seat(slot: SeatSlot) -> SeatOut:
    return SeatOut(
        lease_id=slot.lease_id,
        slot=slot.slot,
        user=slot.user_name,
        device=slot.device_name,
        process=slot.process_id,
        acquired_at=slot.acquired_at,
        expires_at=slot.expires_at,
        borrowed=slot.borrowed,
    )


def _units(view: counters.UnitsView) -> UnitsOut:
    return UnitsOut(
        license_id=view.license_id,
        balance=view.balance,
        recomputed_from_ledger=view.recomputed_from_ledger,
        ledger=[LedgerOut.model_validate(e) for e in view.ledger],
    )


@router.post(
    "/cloud-containers",
    status_code=201,
    response_model=ContainerCredential,
    openapi_extra=IDEMPOTENT,
)
def create_container(
    body: ContainerCreate, request: Request, ctx: Context = Depends(require("licenses:write"))
) -> JSONResponse:
    return ctx.create(
        request,
        body,
        lambda s: _credential(
            cloud.create_container(
                s,
                ctx.actor,
                customer_id=body.customer_id,
                name=body.name,
                max_devices=body.max_devices,
            )
        ),
    )


@router.get("/cloud-containers", response_model=PageOut[ContainerOut])
def list_containers(
    customer_id: str | None = Query(None, max_length=ID),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("licenses:read")),
) -> PageOut[ContainerOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                cloud.containers_query(ctx.vendor_id, customer_id),
                CloudContainer.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            ContainerOut.model_validate,
        )
    )


@router.get("/cloud-containers/{container_id}", response_model=ContainerDetail)
def get_container(
    container_id: str, ctx: Context = Depends(require("licenses:read"))
) -> ContainerDetail:
    return ctx.read(
        lambda s: _detail(
            cloud.container_view(s, cloud.get_container(s, ctx.vendor_id, container_id))
        )
    )


@router.post("/cloud-containers/{container_id}/redeem", response_model=ContainerDetail)
def redeem_into(
    container_id: str, body: RedeemIn, ctx: Context = Depends(require("licenses:write"))
) -> ContainerDetail:
    """Put a ticket's cloud and seat-pool licenses into this container."""
    return ctx.write(
        lambda s: _detail(cloud.redeem_into(s, ctx.actor, ctx.master, container_id, body.ticket))
    )


@router.post(
    "/cloud-containers/{container_id}/actions/reset-credential", response_model=ContainerCredential
)
def reset_credential(
    container_id: str, ctx: Context = Depends(require("licenses:write"))
) -> ContainerCredential:
    """A new credential; devices registered under the old one stop working at once."""
    return ctx.write(
        lambda s: _credential(
            cloud.reset_credential(
                s, ctx.actor, cloud.get_container(s, ctx.vendor_id, container_id, lock=True)
            )
        )
    )


@router.delete(
    "/cloud-containers/{container_id}/devices/{device_id}", response_model=CloudDeviceOut
)
def deregister_device(
    container_id: str, device_id: str, ctx: Context = Depends(require("licenses:write"))
) -> CloudDeviceOut:
    return ctx.write(
        lambda s: CloudDeviceOut.model_validate(
            cloud.deregister_device(
                s, ctx.actor, cloud.get_container(s, ctx.vendor_id, container_id), device_id
            )
        )
    )


@router.get("/licenses/{license_id}/seats", response_model=PageOut[SeatOut])
def list_seats(
    license_id: str,
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("licenses:read")),
) -> PageOut[SeatOut]:
    """Who holds which seat right now, by seat number."""
    now = utcnow()
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                seats.occupancy_query(get_license(s, ctx.actor, license_id).id, now),
                SeatSlot.slot,
                cursor=page.cursor,
                limit=page.limit,
            ),
            _seat,
        )
    )


@router.get("/licenses/{license_id}/seat-events", response_model=PageOut[SeatEventOut])
def list_seat_events(
    license_id: str,
    kind: str | None = Query(None, max_length=CODE),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("licenses:read")),
) -> PageOut[SeatEventOut]:
    """Checkouts, releases, expiries, borrows and denials (``kind=deny`` for true
    denials), oldest first."""
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                seats.seat_events_query(get_license(s, ctx.actor, license_id).id, kind),
                SeatEvent.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            SeatEventOut.model_validate,
        )
    )


@router.delete("/licenses/{license_id}/seats/{lease_id}", status_code=204)
def force_release(
    license_id: str, lease_id: str, ctx: Context = Depends(require("licenses:write"))
) -> Response:
    ctx.write(
        lambda s: seats.force_release(
            s, ctx.actor, get_license(s, ctx.actor, license_id).id, lease_id, now=utcnow()
        )
    )
    return Response(status_code=204)


@router.get("/licenses/{license_id}/units", response_model=UnitsOut)
def get_units(license_id: str, ctx: Context = Depends(require("licenses:read"))) -> UnitsOut:
    return ctx.read(
        lambda s: _units(counters.units_view(s, get_license(s, ctx.actor, license_id).id))
    )


@router.post("/licenses/{license_id}/units/{action}", response_model=LedgerOut)
def adjust_units(
    license_id: str,
    action: Literal["top-up", "reset"],
    body: UnitsIn,
    ctx: Context = Depends(require("licenses:write")),
) -> LedgerOut:
    """``top-up`` adds units; ``reset`` sets the balance."""
    kinds = {"top-up": "top_up", "reset": "reset"}
    return ctx.write(
        lambda s: LedgerOut.model_validate(
            counters.adjust(
                s,
                ctx.actor,
                get_license(s, ctx.actor, license_id, lock=True),
                kind=kinds[action],
                units=body.units,
                now=utcnow(),
            )
        )
    )
