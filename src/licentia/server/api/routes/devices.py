"""Devices: the device-facing protocol (no API key) and the vendor's device management.

Device-facing bodies are compact JWS (``application/jose``), see docs/device-protocol.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.activation import services as activation
from licentia.server.activation.messages import DeviceRequest, read_request
from licentia.server.activation.services import SEEN_GRANULARITY
from licentia.server.activation.unchanged import Unchanged, check_unchanged
from licentia.server.api.context import Context, Services, require, services_of
from licentia.server.api.hot import HotCall, HotRequest, PassOn
from licentia.server.api.schemas import Out, PageOut, PageParams, page_of, page_params
from licentia.server.api.threads import ThreadedRoute, blocking
from licentia.server.db.base import utcnow
from licentia.server.db.engine import run_write
from licentia.server.db.loop_statements import NotHere
from licentia.server.db.pagination import paginate
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device
from licentia.server.keys.services import current_signer
from licentia.server.tenancy.services import get_vendor_by_slug

router = APIRouter(tags=["devices"], route_class=ThreadedRoute)
device_router = APIRouter(tags=["device protocol"], route_class=ThreadedRoute)
JOSE = "application/jose"
MAX_BODY = 256 * 1024
T = TypeVar("T")
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


async def _token(request: Request) -> str:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValidationError("the message is too large", field="body")
    try:
        return body.decode("ascii").strip()
    except UnicodeDecodeError as error:
        raise ValidationError("the body must be a compact JWS", field="body") from error


def _exchange(
    session: Session, services: Services, slug: str, source_ip: str | None
) -> activation.Exchange:
    vendor = get_vendor_by_slug(session, slug)
    return activation.Exchange(
        vendor=vendor,
        load_signer=lambda: current_signer(session, vendor.id, services.master),
        master=services.master,
        now=utcnow(),
        source_ip=source_ip,
    )


def _source_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _run(services: Services, work: Callable[[Session], T]) -> T:
    result: T = await blocking(run_write, services.db, work)
    return _accepted(result)


def _accepted(result: T) -> T:
    if isinstance(result, activation.Refused):
        raise result.error  # the flag it carries is committed already
    return result


def _update_answer(result: object) -> Response:
    if isinstance(result, activation.NotModified):
        return Response(status_code=304, headers={"ETag": f'"{result.state}"'})
    assert isinstance(result, activation.UpdateIssued)
    return Response(
        result.token,
        media_type=JOSE,
        headers={"ETag": f'"{result.state}"', "X-Licentia-Seq": str(result.seq)},
    )


async def _handle_request(
    slug: str,
    request: Request,
    handle: Callable[[Session, activation.Exchange, DeviceRequest], object],
) -> Response:
    """Read the device request in the body, let ``handle`` act on it in one unit of
    work, and answer the signed update (or 304)."""
    token, services = await _token(request), services_of(request)
    work = _request_unit(services, slug, _source_ip(request), token, handle)
    return _update_answer(await _run(services, work))


def _request_unit(
    services: Services,
    slug: str,
    source_ip: str | None,
    token: str,
    handle: Callable[[Session, activation.Exchange, DeviceRequest], object],
) -> Callable[[Session], object]:
    def work(session: Session) -> object:
        ex = _exchange(session, services, slug, source_ip)
        return handle(session, ex, read_request(token, slug, ex.now))

    return work


async def _answer_unchanged(services: Services, slug: str, token: str) -> Unchanged | None:
    """The 304 of a device that is current, from one read (activation.unchanged; on
    PostgreSQL on the event loop), or None when the full sync must run: also on any
    error, which the full sync then reports exactly as it always did."""
    now = utcnow()
    try:
        device_request = read_request(token, slug, now)
    except LicentiaError:
        return None
    unchanged = await services.loop_statements.run(
        lambda connection: check_unchanged(connection, slug, device_request, now)
    )
    if isinstance(unchanged, NotHere):
        unchanged = await blocking(_read_unchanged, services, slug, device_request, now)
    if unchanged is not None and unchanged.needs_write:
        await blocking(_record_visit, services, unchanged, now)
    return unchanged


def _read_unchanged(
    services: Services, slug: str, device_request: DeviceRequest, now: datetime
) -> Unchanged | None:
    with services.db.read() as session:
        return check_unchanged(session, slug, device_request, now)


def _record_visit(services: Services, unchanged: Unchanged, now: datetime) -> None:
    device_id, confirms = unchanged.device_id, unchanged.confirms
    run_write(
        services.db,
        lambda session: devices.record_visit(
            session, device_id, now, seen_granularity=SEEN_GRANULARITY, confirms=confirms
        ),
    )


@device_router.post(
    "/vendors/{slug}/devices/activate",
    response_class=Response,
    openapi_extra=_JOSE_BODY,
    responses=_JOSE_ANSWER,
)
async def activate_device(slug: str, request: Request) -> Response:
    """Online activation: a device request (``op`` activate) with a ticket code."""
    return await _handle_request(slug, request, activation.activate)


@device_router.post(
    "/vendors/{slug}/devices/sync",
    response_class=Response,
    openapi_extra=_JOSE_BODY,
    responses={**_JOSE_ANSWER, 304: {"description": "unchanged"}},
)
async def sync_device(slug: str, request: Request) -> Response:
    """Renew leases and fetch changes; 304 when the device is current (send If-None-Match)."""
    conditional = request.headers.get("If-None-Match") is not None
    token, services = await _token(request), services_of(request)
    return await _sync(services, slug, _source_ip(request), token, conditional=conditional)


async def _sync(
    services: Services, slug: str, source_ip: str | None, token: str, *, conditional: bool
) -> Response:
    def sync(session: Session, ex: activation.Exchange, device: DeviceRequest) -> object:
        return activation.sync(session, ex, device, conditional=conditional)

    # Most conditional syncs find the device current: answer those from a read.
    unchanged = await _answer_unchanged(services, slug, token) if conditional else None
    if unchanged is not None:
        return _update_answer(unchanged)
    unit = _request_unit(services, slug, source_ip, token, sync)
    return _update_answer(await _run(services, unit))


@device_router.post(
    "/vendors/{slug}/devices/offline",
    response_class=Response,
    openapi_extra=_JOSE_BODY,
    responses=_JOSE_ANSWER,
)
async def process_offline_request(slug: str, request: Request) -> Response:
    """A request file from a machine without internet; answers the update file."""
    return await _handle_request(slug, request, activation.process_offline_request)


class ReceiptOut(BaseModel):
    confirmed: int


@device_router.post(
    "/vendors/{slug}/devices/receipts", response_model=ReceiptOut, openapi_extra=_JOSE_BODY
)
async def confirm_receipt(slug: str, request: Request) -> ReceiptOut:
    """A receipt confirms an imported update; a mismatch flags the device."""
    token, services = await _token(request), services_of(request)

    def work(session: Session) -> object:
        return activation.confirm_receipt(
            session, _exchange(session, services, slug, _source_ip(request)), token
        )

    seq = await _run(services, work)
    assert isinstance(seq, int)
    return ReceiptOut(confirmed=seq)


class ReturnOut(BaseModel):
    license: str
    state: str


@device_router.post(
    "/vendors/{slug}/devices/returns", response_model=ReturnOut, openapi_extra=_JOSE_BODY
)
async def return_license(slug: str, request: Request) -> JSONResponse:
    """A return proof: the license becomes available again (transfer limit permitting)."""
    token, services = await _token(request), services_of(request)

    def work(session: Session) -> ReturnOut:
        license_ = activation.return_license(
            session, _exchange(session, services, slug, _source_ip(request)), token
        )
        return ReturnOut(license=license_.id, state=license_.state)

    result = await _run(services, work)
    return JSONResponse(result.model_dump())


# --- the hot calls -----------------------------------------------------------------------
# A fleet of devices activates and syncs (most syncs finding the device current): those
# are answered before FastAPI's routing (licentia.server.api.hot), by the functions the
# routes above call.


def _hot_token(request: HotRequest) -> str:
    """The compact JWS in the body; PassOn (FastAPI's route then says what is wrong)
    for a body too large or not ASCII."""
    if len(request.body) > MAX_BODY:
        raise PassOn
    try:
        return request.body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise PassOn from None


async def _hot_sync(request: HotRequest) -> Response:
    conditional = b"if-none-match" in request.headers
    slug, services = request.params[0], request.services
    token = _hot_token(request)
    return await _sync(services, slug, request.client_host, token, conditional=conditional)


async def _hot_activate(request: HotRequest) -> Response:
    work = _request_unit(
        request.services,
        request.params[0],
        request.client_host,
        _hot_token(request),
        activation.activate,
    )
    return _update_answer(await _run(request.services, work))


HOT_CALLS = (
    HotCall("POST", "/vendors/{slug}/devices/sync", _hot_sync, json_body=False),
    HotCall("POST", "/vendors/{slug}/devices/activate", _hot_activate, json_body=False),
)
