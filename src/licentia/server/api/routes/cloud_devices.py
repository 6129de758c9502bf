"""The cloud protocol a registered device speaks: check, seats, borrowing, counters.

A device authenticates with the token it got by registering with the container's
credential (``Authorization: Bearer lcd_…``). Short-lived signed tokens (access,
seat, borrow) let an application ride out brief network loss. The calls themselves
are :mod:`licentia.server.cloud.calls` and :mod:`licentia.server.cloud.checkout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from licentia.domain.errors import AuthenticationError
from licentia.server.api.bearer import Bearer
from licentia.server.api.bodies import DEVICE_MESSAGE
from licentia.server.api.context import Services, app_services, services_of
from licentia.server.api.hot import HotRequest, PassOn, hot, parsed_by
from licentia.server.api.schemas import CODE, JOSE_BODY, SECRET, TypedTicketCode
from licentia.server.api.threads import ThreadedRoute
from licentia.server.cloud import calls
from licentia.server.cloud.checkout import checkout as checkout_seat
from licentia.server.cloud.protocol import Presented, SeatGrant, SeatWanted, UnitsWanted
from licentia.server.rate_limits.families import Family, limited

router = APIRouter(
    prefix="/vendors/{slug}/cloud", tags=["cloud protocol"], route_class=ThreadedRoute
)
_bearer = Bearer(
    scheme_name="CloudDeviceToken",
    description="A cloud device's token (lcd_…), from registering with the container credential",
)
MAX_WAIT = 60.0


@dataclass(frozen=True)
class DeviceCall:
    """Who calls (the vendor's slug, the device token, from where) and the app."""

    services: Services
    presented: Presented


def _hot_device_call(request: HotRequest) -> DeviceCall:
    if request.token is None:
        raise PassOn  # FastAPI answers the 401
    who = Presented(request.params["slug"], request.token, request.client_host)
    return DeviceCall(request.services, who)


@parsed_by(_hot_device_call)
async def device_call(
    slug: str, request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> DeviceCall:
    """Asynchronous: it reads nothing, so it costs no thread hop of its own."""
    if credentials is None:
        raise AuthenticationError("send 'Authorization: Bearer <device token>'")
    host = request.client.host if request.client else None
    return DeviceCall(services_of(request), Presented(slug, credentials.credentials, host))


def _json(model: BaseModel, status_code: int = 200) -> Response:
    """An answer serialised once, by pydantic, without FastAPI validating it again."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


# --- redeem and register ---------------------------------------------------------------


class RedeemIn(BaseModel):
    ticket: TypedTicketCode
    name: str = Field(default="Cloud container", min_length=1, max_length=200)


class CredentialOut(BaseModel):
    container_id: str
    credential: str = Field(description="keep it in a .licred file; shown once")
    license_ids: list[str]


class RegisterIn(BaseModel):
    credential: str = Field(max_length=SECRET)
    name: str = Field(min_length=1, max_length=200)


class RegistrationOut(BaseModel):
    device_id: str
    container_id: str
    token: str = Field(description="send as 'Authorization: Bearer <token>'; shown once")


@router.post("/redeem", response_model=CredentialOut, status_code=201)
@limited(Family.TICKET)
async def redeem(
    slug: str, body: RedeemIn, services: Services = Depends(app_services)
) -> CredentialOut:
    """Redeem a ticket into a new cloud container for its customer; answers the
    container's credential (once: a ticket redeemed already answers ALREADY_REDEEMED)."""
    redeemed = await calls.redeem(services.runner, services.master, slug, body.ticket, body.name)
    return CredentialOut.model_validate(redeemed, from_attributes=True)


@router.post(
    "/devices",
    response_model=RegistrationOut,
    status_code=201,
    responses={401: {"description": "UNAUTHENTICATED: not the container's credential"}},
)
@limited(Family.REGISTRATION)
async def register(
    slug: str, body: RegisterIn, services: Services = Depends(app_services)
) -> RegistrationOut:
    """Exchange the container credential for a device registration (device limit applies)."""
    registered = await calls.register(services.runner, slug, body.credential, body.name)
    return RegistrationOut.model_validate(registered, from_attributes=True)


@router.delete("/devices/current", status_code=204)
async def deregister(call: DeviceCall = Depends(device_call)) -> Response:
    await calls.deregister(call.services.runner, call.services.master, call.presented)
    return Response(status_code=204)


# --- check -----------------------------------------------------------------------------


class CheckIn(BaseModel):
    product: str = Field(max_length=CODE)
    feature: str | None = Field(default=None, max_length=CODE)


class TokenOut(BaseModel):
    token: str
    license_id: str
    expires_at: datetime


@router.post("/check", response_model=TokenOut)
async def check(body: CheckIn, call: DeviceCall = Depends(device_call)) -> TokenOut:
    """May this device use ``product``/``feature`` now? Answers a short-lived access token."""
    services = call.services
    token = await calls.check(
        services.runner, services.master, call.presented, body.product, body.feature
    )
    return TokenOut.model_validate(token, from_attributes=True)


# --- seats -----------------------------------------------------------------------------


class CheckoutIn(BaseModel):
    product: str = Field(max_length=CODE)
    feature: str | None = Field(default=None, max_length=CODE)
    user: str = Field(min_length=1, max_length=200)
    device: str = Field(
        min_length=1, max_length=200, description="a stable name or id of the machine"
    )
    process: str = Field(default="0", min_length=1, max_length=64)
    wait_seconds: float = Field(default=0, ge=0, le=MAX_WAIT, description="queue up to this long")


class LeaseOut(BaseModel):
    lease_id: str
    license_id: str
    fence: int
    expires_at: datetime
    ttl_seconds: int
    reconnected: bool
    token: str


# A lease's fence is a 32-bit counter (seats.models.SeatSlot.fence): one beyond it names
# no lease, and is refused before PostgreSQL would refuse to compare it.
FENCE_MAX = 2**31 - 1


class HeartbeatIn(BaseModel):
    fence: int = Field(
        ge=0, le=FENCE_MAX, description="the lease's fence, as its checkout answered it"
    )


def _lease_out(grant: SeatGrant, status_code: int = 200) -> Response:
    return _json(LeaseOut.model_validate(grant, from_attributes=True), status_code)


@router.post("/seats", response_model=LeaseOut, status_code=201)
@hot
async def checkout(body: CheckoutIn, call: DeviceCall = Depends(device_call)) -> Response:
    """Take a seat (or get your own back). With ``wait_seconds``, wait in line for one."""
    services = call.services
    wanted = SeatWanted(body.product, body.feature, body.user, body.device, body.process)
    grant = await checkout_seat(
        services.seat_takes, call.presented, wanted, wait_seconds=body.wait_seconds
    )
    return _lease_out(grant, 201)


@router.post("/seats/{lease_id}/heartbeat", response_model=LeaseOut)
@hot
async def heartbeat(
    lease_id: str, body: HeartbeatIn, call: DeviceCall = Depends(device_call)
) -> Response:
    """Keep a seat; 409 ``SEAT_LOST`` if it was released or reassigned meanwhile."""
    services = call.services
    grant = await calls.heartbeat(
        services.runner, services.renewals, services.master, call.presented, lease_id, body.fence
    )
    return _lease_out(grant)


@router.delete("/seats/{lease_id}", status_code=204)
@hot
async def release(
    lease_id: str,
    fence: int = Query(
        ge=0, le=FENCE_MAX, description="the lease's fence, as its checkout answered it"
    ),
    call: DeviceCall = Depends(device_call),
) -> Response:
    """Free the seat at once (also ends a borrow early). Releasing twice, or with a
    fence the lease no longer has, is harmless: nothing is freed."""
    services = call.services
    await calls.release(services.runner, services.releases, call.presented, lease_id, fence)
    return Response(status_code=204)


# --- borrowing -------------------------------------------------------------------------


class BorrowIn(BaseModel):
    product: str = Field(max_length=CODE)
    feature: str | None = Field(default=None, max_length=CODE)
    user: str = Field(min_length=1, max_length=200)
    days: int = Field(ge=1, le=366)
    request: str = Field(
        max_length=DEVICE_MESSAGE,
        description="a device request (op sync) naming the device key and fingerprint",
    )


class BorrowOut(BaseModel):
    lease_id: str
    license_id: str
    document: str = Field(description="licentia-borrow+jwt bound to the device; usable offline")
    expires_at: datetime


@router.post("/borrow", response_model=BorrowOut, status_code=201, max_body_size=DEVICE_MESSAGE)
async def borrow(body: BorrowIn, call: DeviceCall = Depends(device_call)) -> BorrowOut:
    """Hold a seat for offline use until the borrow ends (or is returned early)."""
    wanted = calls.BorrowWanted(body.product, body.feature, body.user, body.days, body.request)
    borrowed = await calls.borrow(
        call.services.runner, call.services.master, call.presented, wanted
    )
    return BorrowOut.model_validate(borrowed, from_attributes=True)


class ReturnOut(BaseModel):
    lease_id: str
    state: str = "returned"


@router.post(
    "/borrow/returns",
    response_model=ReturnOut,
    max_body_size=DEVICE_MESSAGE,
    openapi_extra=JOSE_BODY,
)
async def return_borrow(
    slug: str, request: Request, services: Services = Depends(app_services)
) -> ReturnOut:
    """An offline return of a borrowed seat: a return proof (``lease`` claim) signed by
    the borrowing device's key (the key is in the proof; its thumbprint must be the
    device the seat was lent to). No device token needed: the proof is the credential."""
    proof = (await request.body()).decode("ascii", errors="replace").strip()
    return ReturnOut(lease_id=await calls.return_borrow(services.runner, slug, proof))


# --- counters --------------------------------------------------------------------------


class ConsumeIn(BaseModel):
    product: str = Field(max_length=CODE)
    feature: str | None = Field(default=None, max_length=CODE)
    units: int = Field(ge=1, le=10**9)
    key: str = Field(
        min_length=1, max_length=200, description="idempotency key of this consumption"
    )


class ConsumeOut(BaseModel):
    license_id: str
    units: int
    balance_after: int
    key: str
    replayed: bool


@router.post("/counters/consume", response_model=ConsumeOut)
@hot
async def consume(body: ConsumeIn, call: DeviceCall = Depends(device_call)) -> Response:
    """Take units atomically; the same ``key`` never counts twice. 409 ``UNITS_EXHAUSTED``."""
    wanted = UnitsWanted(body.product, body.feature, body.units, body.key)
    services = call.services
    consumed = await calls.consume(
        services.runner, services.consumptions, services.master, call.presented, wanted
    )
    return _json(ConsumeOut.model_validate(consumed, from_attributes=True))
