"""Devices: the device-facing protocol (no API key) and the vendor's device management.

Device-facing bodies are compact JWS (``application/jose``), see docs/device-protocol.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from licentia.domain.errors import ValidationError
from licentia.server.activation import calls
from licentia.server.activation import services as activation
from licentia.server.activation.calls import DeviceMessage
from licentia.server.api.bodies import DEVICE_MESSAGE
from licentia.server.api.context import Context, Services, app_services, require
from licentia.server.api.hot import HotRequest, PassOn, hot, parsed_by
from licentia.server.api.schemas import (
    CODE,
    JOSE,
    JOSE_BODY,
    Out,
    PageOut,
    PageParams,
    jose_answer,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.pagination import paginate
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device
from licentia.server.rate_limits.families import Family, limited

router = APIRouter(tags=["devices"], route_class=ThreadedRoute)
device_router = APIRouter(
    tags=["device protocol"], route_class=ThreadedRoute, max_body_size=DEVICE_MESSAGE
)
MAX_BODY = DEVICE_MESSAGE
_JOSE_ANSWER = jose_answer("signed update (docs/device-protocol.md)")


class DeviceOut(Out):
    id: str
    key_id: str
    status: str
    seq: int
    confirmed_seq: int
    vm: bool
    flags: list[str]
    license_ids: list[str]
    last_seen_at: datetime | None
    created_at: datetime


def device_out(view: devices.DeviceView) -> DeviceOut:
    return DeviceOut.model_validate(view, from_attributes=True)


# --- vendor side -----------------------------------------------------------------------


@router.get("/devices", response_model=PageOut[DeviceOut])
def list_devices(
    status: str | None = Query(
        None,
        max_length=CODE,
        description="active or blacklisted",
        json_schema_extra={"enum": list(devices.STATUSES)},
    ),
    flag: str | None = Query(
        None,
        max_length=CODE,
        description="held by an active flag: clone_suspected, replay_suspected, "
        "manipulation_suspected, or any",
        json_schema_extra={"enum": [devices.ANY_FLAG, *devices.FLAG_KINDS]},
    ),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("licenses:read")),
) -> PageOut[DeviceOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                devices.devices_query(ctx.actor, status, flag=flag),
                Device.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            lambda d: device_out(devices.device_view(s, d)),
        )
    )


@router.get("/devices/{device_id}", response_model=DeviceOut)
def get_device(device_id: str, ctx: Context = Depends(require("licenses:read"))) -> DeviceOut:
    return ctx.read(
        lambda s: device_out(devices.device_view(s, devices.get_device(s, ctx.actor, device_id)))
    )


@router.post("/devices/{device_id}/actions/{action}", response_model=DeviceOut)
def act_on_device(
    device_id: str,
    action: Literal["deactivate", "blacklist", "clear-flags"],
    ctx: Context = Depends(require("licenses:write")),
) -> DeviceOut:
    """``deactivate`` frees its licenses; ``blacklist`` also refuses the device for good
    (its next sync removes its licenses); ``clear-flags`` ends a review."""
    act = {
        "deactivate": devices.deactivate_device,
        "blacklist": devices.blacklist_device,
        "clear-flags": devices.clear_flags,
    }[action]
    return ctx.write(lambda s: device_out(devices.device_view(s, act(s, ctx.actor, device_id))))


# --- device side -----------------------------------------------------------------------


def _message_of(slug: str, body: bytes, source_ip: str | None) -> DeviceMessage:
    """The device message in ``body``; ValidationError if it cannot be one."""
    if len(body) > MAX_BODY:
        raise ValidationError("the message is too large", field="body")
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError as error:
        raise ValidationError("the body must be a compact JWS", field="body") from error
    return DeviceMessage(slug, token, source_ip)


def _hot_message(request: HotRequest) -> DeviceMessage:
    """PassOn (FastAPI's route then says what is wrong) for a body too large or not
    ASCII."""
    try:
        return _message_of(request.params["slug"], request.body, request.client_host)
    except ValidationError:
        raise PassOn from None


@parsed_by(_hot_message)
async def device_message(slug: str, request: Request) -> DeviceMessage:
    """A dependency: the compact JWS a device sent to the vendor ``slug``."""
    source_ip = request.client.host if request.client else None
    return _message_of(slug, await request.body(), source_ip)


def _hot_conditional(request: HotRequest) -> bool:
    return b"if-none-match" in request.headers


@parsed_by(_hot_conditional)
async def conditional(request: Request) -> bool:
    """A dependency: whether the device sent ``If-None-Match``."""
    return request.headers.get("If-None-Match") is not None


def _update_answer(result: activation.UpdateIssued | activation.NotModified) -> Response:
    if isinstance(result, activation.NotModified):
        return Response(status_code=304, headers={"ETag": f'"{result.state}"'})
    return Response(
        result.token,
        media_type=JOSE,
        headers={"ETag": f'"{result.state}"', "X-Licentia-Seq": str(result.seq)},
    )


@device_router.post(
    "/vendors/{slug}/devices/activate",
    response_class=Response,
    openapi_extra=JOSE_BODY,
    responses=_JOSE_ANSWER,
)
@limited(Family.ACTIVATION)
@hot
async def activate_device(
    message: DeviceMessage = Depends(device_message),
    services: Services = Depends(app_services),
) -> Response:
    """Online activation: a device request (``op`` activate) with a ticket code."""
    return _update_answer(await calls.activate(services.runner, services.master, message))


@device_router.post(
    "/vendors/{slug}/devices/sync",
    response_class=Response,
    openapi_extra=JOSE_BODY,
    responses={**_JOSE_ANSWER, 304: {"description": "unchanged"}},
)
@hot  # a fleet of devices syncs all day, most finding the device current
async def sync_device(
    message: DeviceMessage = Depends(device_message),
    if_none_match: bool = Depends(conditional),
    services: Services = Depends(app_services),
) -> Response:
    """Renew leases and fetch changes; 304 when the device is current (send If-None-Match)."""
    result = await calls.sync(services.runner, services.master, message, conditional=if_none_match)
    return _update_answer(result)


@device_router.post(
    "/vendors/{slug}/devices/offline",
    response_class=Response,
    openapi_extra=JOSE_BODY,
    responses=_JOSE_ANSWER,
)
@limited(Family.ACTIVATION)
async def process_offline_request(
    message: DeviceMessage = Depends(device_message),
    services: Services = Depends(app_services),
) -> Response:
    """A request file from a machine without internet; answers the update file."""
    return _update_answer(
        await calls.process_offline_request(services.runner, services.master, message)
    )


class ReceiptOut(BaseModel):
    confirmed: int


@device_router.post(
    "/vendors/{slug}/devices/receipts", response_model=ReceiptOut, openapi_extra=JOSE_BODY
)
async def confirm_receipt(
    message: DeviceMessage = Depends(device_message),
    services: Services = Depends(app_services),
) -> ReceiptOut:
    """A receipt confirms an imported update; a mismatch flags the device."""
    return ReceiptOut(
        confirmed=await calls.confirm_receipt(services.runner, services.master, message)
    )


class ReturnOut(BaseModel):
    license: str
    state: str


@device_router.post(
    "/vendors/{slug}/devices/returns", response_model=ReturnOut, openapi_extra=JOSE_BODY
)
async def return_license(
    message: DeviceMessage = Depends(device_message),
    services: Services = Depends(app_services),
) -> JSONResponse:
    """A return proof: the license becomes available again (transfer limit permitting)."""
    returned = await calls.return_license(services.runner, services.master, message)
    return JSONResponse(ReturnOut(license=returned.license_id, state=returned.state).model_dump())
