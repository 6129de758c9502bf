"""Devices: the device-facing protocol (no API key) and the vendor's device management.

Device-facing bodies are compact JWS (``application/jose``), see docs/device-protocol.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from licentia.domain.errors import ValidationError
from licentia.server.activation import calls
from licentia.server.activation import services as activation
from licentia.server.activation.calls import DeviceMessage
from licentia.server.api.context import Context, Services, require, services_of
from licentia.server.api.hot import HotCall, HotRequest, PassOn
from licentia.server.api.schemas import Out, PageOut, PageParams, page_of, page_params
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.pagination import paginate
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device

router = APIRouter(tags=["devices"], route_class=ThreadedRoute)
device_router = APIRouter(tags=["device protocol"], route_class=ThreadedRoute)
JOSE = "application/jose"
MAX_BODY = 256 * 1024
_JOSE_BODY: dict[str, Any] = {
    "requestBody": {"content": {JOSE: {"schema": {"type": "string"}}}, "required": True}
}
_JOSE_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {JOSE: {}}, "description": "signed update (docs/device-protocol.md)"}
}


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


def device_out(session: Session, device: Device) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        key_id=device.key_id,
        status=device.status,
        seq=device.seq,
        confirmed_seq=device.confirmed_seq,
        vm=device.vm,
        flags=[flag.kind for flag in devices.active_flags(session, device.id)],
        license_ids=[item.id for item in devices.device_licenses(session, device.id)],
        last_seen_at=device.last_seen_at,
        created_at=device.created_at,
    )


# --- vendor side -----------------------------------------------------------------------


@router.get("/devices", response_model=PageOut[DeviceOut])
def list_devices(
    status: str | None = None,
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("licenses:read")),
) -> PageOut[DeviceOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                devices.devices_query(ctx.actor, status),
                Device.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            lambda d: device_out(s, d),
        )
    )


@router.get("/devices/{device_id}", response_model=DeviceOut)
def get_device(device_id: str, ctx: Context = Depends(require("licenses:read"))) -> DeviceOut:
    return ctx.read(lambda s: device_out(s, devices.get_device(s, ctx.actor, device_id)))


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
    return ctx.write(lambda s: device_out(s, act(s, ctx.actor, device_id)))


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


async def _message(slug: str, request: Request) -> DeviceMessage:
    source_ip = request.client.host if request.client else None
    return _message_of(slug, await request.body(), source_ip)


def _update_answer(result: activation.UpdateIssued | activation.NotModified) -> Response:
    if isinstance(result, activation.NotModified):
        return Response(status_code=304, headers={"ETag": f'"{result.state}"'})
    return Response(
        result.token,
        media_type=JOSE,
        headers={"ETag": f'"{result.state}"', "X-Licentia-Seq": str(result.seq)},
    )


async def _activate(services: Services, message: DeviceMessage) -> Response:
    return _update_answer(await calls.activate(services.runner, services.master, message))


async def _sync(services: Services, message: DeviceMessage, *, conditional: bool) -> Response:
    result = await calls.sync(services.runner, services.master, message, conditional=conditional)
    return _update_answer(result)


@device_router.post(
    "/vendors/{slug}/devices/activate",
    response_class=Response,
    openapi_extra=_JOSE_BODY,
    responses=_JOSE_ANSWER,
)
async def activate_device(slug: str, request: Request) -> Response:
    """Online activation: a device request (``op`` activate) with a ticket code."""
    return await _activate(services_of(request), await _message(slug, request))


@device_router.post(
    "/vendors/{slug}/devices/sync",
    response_class=Response,
    openapi_extra=_JOSE_BODY,
    responses={**_JOSE_ANSWER, 304: {"description": "unchanged"}},
)
async def sync_device(slug: str, request: Request) -> Response:
    """Renew leases and fetch changes; 304 when the device is current (send If-None-Match)."""
    conditional = request.headers.get("If-None-Match") is not None
    message = await _message(slug, request)
    return await _sync(services_of(request), message, conditional=conditional)


@device_router.post(
    "/vendors/{slug}/devices/offline",
    response_class=Response,
    openapi_extra=_JOSE_BODY,
    responses=_JOSE_ANSWER,
)
async def process_offline_request(slug: str, request: Request) -> Response:
    """A request file from a machine without internet; answers the update file."""
    services, message = services_of(request), await _message(slug, request)
    return _update_answer(
        await calls.process_offline_request(services.runner, services.master, message)
    )


class ReceiptOut(BaseModel):
    confirmed: int


@device_router.post(
    "/vendors/{slug}/devices/receipts", response_model=ReceiptOut, openapi_extra=_JOSE_BODY
)
async def confirm_receipt(slug: str, request: Request) -> ReceiptOut:
    """A receipt confirms an imported update; a mismatch flags the device."""
    services, message = services_of(request), await _message(slug, request)
    return ReceiptOut(
        confirmed=await calls.confirm_receipt(services.runner, services.master, message)
    )


class ReturnOut(BaseModel):
    license: str
    state: str


@device_router.post(
    "/vendors/{slug}/devices/returns", response_model=ReturnOut, openapi_extra=_JOSE_BODY
)
async def return_license(slug: str, request: Request) -> JSONResponse:
    """A return proof: the license becomes available again (transfer limit permitting)."""
    services, message = services_of(request), await _message(slug, request)
    returned = await calls.return_license(services.runner, services.master, message)
    return JSONResponse(ReturnOut(license=returned.license_id, state=returned.state).model_dump())


# --- the hot calls -----------------------------------------------------------------------
# A fleet of devices activates and syncs (most syncs finding the device current): those
# are answered before FastAPI's routing (licentia.server.api.hot), by the functions the
# routes above call.


def _hot_message(request: HotRequest) -> DeviceMessage:
    """The device message in the body; PassOn (FastAPI's route then says what is
    wrong) for a body too large or not ASCII."""
    try:
        return _message_of(request.params[0], request.body, request.client_host)
    except ValidationError:
        raise PassOn from None


async def _hot_sync(request: HotRequest) -> Response:
    conditional = b"if-none-match" in request.headers
    return await _sync(request.services, _hot_message(request), conditional=conditional)


async def _hot_activate(request: HotRequest) -> Response:
    return await _activate(request.services, _hot_message(request))


HOT_CALLS = (
    HotCall("POST", "/vendors/{slug}/devices/sync", _hot_sync, json_body=False),
    HotCall("POST", "/vendors/{slug}/devices/activate", _hot_activate, json_body=False),
)
