"""The cloud protocol a registered device speaks: check, seats, borrowing, counters.

A device authenticates with the token it got by registering with the container's
credential (``Authorization: Bearer lcd_…``). Short-lived signed tokens (access,
seat, borrow) let an application ride out brief network loss.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import AuthenticationError, ConflictError, LicentiaError
from licentia.domain.templates import OPTION_DEFAULTS, StoredOptions
from licentia.formats.device import device_id, ed25519_from_jwk, unverified_claims
from licentia.formats.document_types import ACCESS_TYP, BORROW_TYP, RETURN_TYP
from licentia.server.activation.messages import read_request, read_signed_by
from licentia.server.api.context import Services, services_of
from licentia.server.api.hot import HotRequest, PassOn, hot, parsed_by
from licentia.server.api.threads import ThreadedRoute, blocking
from licentia.server.cloud import protocol
from licentia.server.cloud import services as cloud
from licentia.server.cloud.access import DeviceAccess, touch_device
from licentia.server.counters import services as counters
from licentia.server.db.base import utcnow
from licentia.server.db.core import CoreConnection
from licentia.server.db.engine import run_write
from licentia.server.keys.services import Signer
from licentia.server.licenses.models import License
from licentia.server.orders.services import find_ticket
from licentia.server.seats import services as seats
from licentia.server.seats.models import SeatSlot
from licentia.server.tenancy.services import get_vendor_by_slug

router = APIRouter(
    prefix="/vendors/{slug}/cloud", tags=["cloud protocol"], route_class=ThreadedRoute
)
_bearer = HTTPBearer(auto_error=False, description="A device token (lcd_…)")
MAX_WAIT = 60.0
SEAT_POOLS = protocol.SEAT_POOLS
T = TypeVar("T")


@dataclass(frozen=True)
class DeviceCall:
    services: Services
    presented: protocol.Presented

    def run(self, work: Callable[[Session, Caller], T]) -> T:
        """Run ``work`` in one write transaction, after the device's access check."""

        def unit(session: Session) -> T:
            connection = session.connection()
            access = protocol.authenticate(connection, self.presented)
            touch_device(connection, access, utcnow())
            return work(session, Caller(access, self.services, self.presented.source_ip))

        return run_write(self.services.db, unit)

    async def at_once(self, work: Callable[[CoreConnection, datetime], T]) -> T:
        """Run one of the protocol's hot calls (they check the access themselves)."""
        return await self.services.runner.autocommit(lambda c: work(c, utcnow()))


@dataclass(frozen=True)
class Caller:
    access: DeviceAccess
    services: Services
    source_ip: str | None

    @property
    def vendor_id(self) -> str:
        return self.access.vendor_id

    @property
    def container_id(self) -> str:
        return self.access.container_id

    @property
    def actor(self) -> Actor:
        return self.access.actor(self.source_ip)

    def signer(self) -> Signer:
        return self.access.signer(self.services.master)


def _hot_device_call(request: HotRequest) -> DeviceCall:
    if request.token is None:
        raise PassOn  # FastAPI answers the 401
    who = protocol.Presented(request.params["slug"], request.token, request.client_host)
    return DeviceCall(request.services, who)


@parsed_by(_hot_device_call)
async def device_call(
    slug: str, request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> DeviceCall:
    """Asynchronous: it reads nothing, so it costs no thread hop of its own."""
    if credentials is None:
        raise AuthenticationError("send 'Authorization: Bearer <device token>'")
    host = request.client.host if request.client else None
    return DeviceCall(services_of(request), protocol.Presented(slug, credentials.credentials, host))


def _json(model: BaseModel, status_code: int = 200) -> Response:
    """An answer serialised once, by pydantic, without FastAPI validating it again."""
    return Response(model.model_dump_json(), status_code, media_type="application/json")


# --- redeem and register ---------------------------------------------------------------


class RedeemIn(BaseModel):
    ticket: str
    name: str = Field(default="Cloud container", min_length=1, max_length=200)


class CredentialOut(BaseModel):
    container_id: str
    credential: str = Field(description="keep it in a .licred file; shown once")
    license_ids: list[str]


class RegisterIn(BaseModel):
    credential: str
    name: str = Field(min_length=1, max_length=200)


class RegistrationOut(BaseModel):
    device_id: str
    container_id: str
    token: str = Field(description="send as 'Authorization: Bearer <token>'; shown once")


@router.post("/redeem", response_model=CredentialOut, status_code=201)
def redeem(slug: str, body: RedeemIn, request: Request) -> CredentialOut:
    """Redeem a ticket into a new cloud container for its customer; answers the
    container's credential (once: a ticket redeemed already answers ALREADY_REDEEMED)."""
    services = services_of(request)

    def work(session: Session) -> CredentialOut:
        vendor = get_vendor_by_slug(session, slug)
        ticket = find_ticket(session, vendor.id, services.master, body.ticket)
        actor = Actor(ActorKind.CUSTOMER, None, vendor.id, frozenset(), None)
        issued = cloud.create_container(
            session,
            actor,
            customer_id=ticket.customer_id,
            name=body.name,
            max_devices=_max_devices(session, ticket.id),
        )
        licenses = cloud.redeem_ticket(
            session, actor, services.master, issued.container, body.ticket
        )
        if not licenses:
            raise ConflictError("this ticket was redeemed already", code="ALREADY_REDEEMED")
        return CredentialOut(
            container_id=issued.container.id,
            credential=issued.credential,
            license_ids=[item.id for item in licenses],
        )

    return run_write(services.db, work)


def _max_devices(session: Session, ticket_id: str) -> int:
    options = session.scalars(select(License.options).where(License.ticket_id == ticket_id)).all()
    return max((StoredOptions(o).max_devices for o in options), default=OPTION_DEFAULTS.max_devices)


@router.post("/devices", response_model=RegistrationOut, status_code=201)
def register(slug: str, body: RegisterIn, request: Request) -> RegistrationOut:
    """Exchange the container credential for a device registration (device limit applies)."""
    services = services_of(request)

    def work(session: Session) -> RegistrationOut:
        vendor = get_vendor_by_slug(session, slug)
        registration = cloud.register_device(session, vendor.id, body.credential, body.name)
        return RegistrationOut(
            device_id=registration.device.id,
            container_id=registration.device.container_id,
            token=registration.token,
        )

    return run_write(services.db, work)


@router.delete("/devices/current", status_code=204)
def deregister(call: DeviceCall = Depends(device_call)) -> Response:
    def work(session: Session, caller: Caller) -> None:
        container = cloud.get_container(session, caller.vendor_id, caller.container_id)
        cloud.deregister_device(session, caller.actor, container, caller.access.device_id)

    call.run(work)
    return Response(status_code=204)


# --- check -----------------------------------------------------------------------------


class CheckIn(BaseModel):
    product: str
    feature: str | None = None


class TokenOut(BaseModel):
    token: str
    license_id: str
    expires_at: datetime


@router.post("/check", response_model=TokenOut)
def check(body: CheckIn, call: DeviceCall = Depends(device_call)) -> TokenOut:
    """May this device use ``product``/``feature`` now? Answers a short-lived access token."""

    def work(session: Session, caller: Caller) -> TokenOut:
        now = utcnow()
        (license_, *_) = cloud.find_usable(
            session,
            caller.container_id,
            body.product,
            body.feature,
            delivery=protocol.CLOUD_USES,
            now=now,
        )
        ttl = timedelta(seconds=StoredOptions(license_.options).access_token_seconds)
        expires = min(now + ttl, license_.valid_until or now + ttl)
        claims = protocol.claims(caller.access, license_, now, expires) | {"scope": body.feature}
        return TokenOut(
            token=caller.signer().sign(claims, typ=ACCESS_TYP),
            license_id=license_.id,
            expires_at=expires,
        )

    return call.run(work)


# --- seats -----------------------------------------------------------------------------


class CheckoutIn(BaseModel):
    product: str
    feature: str | None = None
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


class HeartbeatIn(BaseModel):
    fence: int


def _lease_out(grant: protocol.SeatGrant) -> LeaseOut:
    return LeaseOut.model_validate(grant, from_attributes=True)


@dataclass(frozen=True)
class _Refusal:
    error: LicentiaError


def _may_try(
    session: Session,
    queue: str,
    waiter: str | None,
    pools: list[License],
    holder: seats.Holder,
    now: datetime,
) -> bool:
    """Whether this checkout may try for a seat now, first come first served. The line
    is for new seats: a holder coming back to its own seat never waits, and as many
    callers as there are free seats may go at once (with none free, the first in line
    goes on to be denied, so that the denial is recorded)."""
    line = timedelta(seconds=5)
    if seats.first_in_line(session, queue, waiter, now=now, ttl=line):
        return True
    if any(seats.holds_seat(session, pool, holder) for pool in pools):
        return True
    free = sum(seats.free_seats(session, pool, now) for pool in pools)
    return free > 1 and seats.first_in_line(session, queue, waiter, now=now, ttl=line, free=free)


def _try_checkout(
    body: CheckoutIn, waiter: str | None
) -> Callable[[Session, Caller], LeaseOut | _Refusal]:
    def work(session: Session, caller: Caller) -> LeaseOut | _Refusal:
        now = utcnow()
        queue = caller.container_id + _wanted(body).queue_suffix()
        pools = cloud.find_usable(
            session, caller.container_id, body.product, body.feature, delivery=SEAT_POOLS, now=now
        )
        holder = seats.Holder(body.user, body.device, body.process)
        if not _may_try(session, queue, waiter, pools, holder, now):
            return _Refusal(
                ConflictError(
                    "others are waiting for a seat", code="NO_SEAT_AVAILABLE", queued=True
                )
            )
        denied: seats.Denied | None = None
        for pool in pools:
            ttl = timedelta(seconds=protocol.lease_seconds(pool.options))
            result = seats.checkout(session, pool, holder, now=now, ttl=ttl)
            if isinstance(result, seats.Lease):
                if waiter is not None:
                    seats.leave_queue(session, waiter)
                master = caller.services.master
                return _lease_out(protocol.seat_grant(master, caller.access, pool, result, now))
            denied = result
        assert denied is not None
        return _Refusal(
            ConflictError(
                f"all {denied.seats} seats are in use",
                code=denied.code,
                in_use=denied.in_use,
                seats=denied.seats,
            )
        )

    return work


def _wanted(body: CheckoutIn) -> protocol.SeatWanted:
    return protocol.SeatWanted(body.product, body.feature, body.user, body.device, body.process)


@router.post("/seats", response_model=LeaseOut, status_code=201)
@hot
async def checkout(body: CheckoutIn, call: DeviceCall = Depends(device_call)) -> Response:
    """Take a seat (or get your own back). With ``wait_seconds``, wait in line for one."""
    return await _checkout(body, call)


async def _checkout(body: CheckoutIn, call: DeviceCall) -> Response:
    if body.wait_seconds == 0:  # the common case first, in two statements
        master, wanted = call.services.master, _wanted(body)

        def take(connection: CoreConnection, now: datetime) -> protocol.SeatGrant | None:
            return protocol.take_seat(connection, master, call.presented, wanted, now=now)

        grant = await call.at_once(take)
        if grant is not None:
            return _json(_lease_out(grant), 201)
    return _json(await _checkout_in_line(body, call), 201)


async def _checkout_in_line(body: CheckoutIn, call: DeviceCall) -> LeaseOut:
    """The full checkout, in a transaction per try: reconnects, denials, waiting."""
    waiter = None
    if body.wait_seconds > 0:
        waiter = await blocking(call.run, _enqueue(body))
    deadline = time.monotonic() + body.wait_seconds
    delay = 0.05
    try:
        while True:
            result = await blocking(call.run, _try_checkout(body, waiter))
            if isinstance(result, LeaseOut):
                return result
            if time.monotonic() + delay > deadline:
                raise result.error
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
    finally:
        if waiter is not None:  # a waiter that gives up must not block the line behind it
            await blocking(call.run, _leave(waiter))


def _leave(waiter: str) -> Callable[[Session, Caller], None]:
    return lambda session, _caller: seats.leave_queue(session, waiter)


def _enqueue(body: CheckoutIn) -> Callable[[Session, Caller], str]:
    def work(session: Session, caller: Caller) -> str:
        queue = caller.container_id + _wanted(body).queue_suffix()
        return seats.enqueue(
            session, caller.vendor_id, queue, now=utcnow(), ttl=timedelta(seconds=5)
        )

    return work


@router.post("/seats/{lease_id}/heartbeat", response_model=LeaseOut)
@hot
async def heartbeat(
    lease_id: str, body: HeartbeatIn, call: DeviceCall = Depends(device_call)
) -> Response:
    """Keep a seat; 409 ``SEAT_LOST`` if it was released or reassigned meanwhile."""
    return await _renew(call, lease_id, body)


async def _renew(call: DeviceCall, lease_id: str, body: HeartbeatIn) -> Response:
    master, fence = call.services.master, body.fence
    grant = await call.services.renewals.renew(call.presented, lease_id, fence)
    if grant is None:  # not renewed with others (SQLite, or something is amiss): alone

        def work(connection: CoreConnection, now: datetime) -> protocol.SeatGrant:
            return protocol.renew_seat(connection, master, call.presented, lease_id, fence, now=now)

        grant = await call.at_once(work)
    return _json(_lease_out(grant))


@router.delete("/seats/{lease_id}", status_code=204)
@hot
async def release(lease_id: str, call: DeviceCall = Depends(device_call)) -> Response:
    """Free the seat at once (also ends a borrow early). Releasing twice is harmless."""
    return await _release(call, lease_id)


async def _release(call: DeviceCall, lease_id: str) -> Response:
    def work(connection: CoreConnection, now: datetime) -> None:
        protocol.release_seat(connection, call.presented, lease_id, now=now)

    await call.at_once(work)
    return Response(status_code=204)


# --- borrowing -------------------------------------------------------------------------


class BorrowIn(BaseModel):
    product: str
    feature: str | None = None
    user: str = Field(min_length=1, max_length=200)
    days: int = Field(ge=1, le=366)
    request: str = Field(
        description="a device request (op sync) naming the device key and fingerprint"
    )


class BorrowOut(BaseModel):
    lease_id: str
    license_id: str
    document: str = Field(description="licentia-borrow+jwt bound to the device; usable offline")
    expires_at: datetime


@router.post("/borrow", response_model=BorrowOut, status_code=201)
def borrow(body: BorrowIn, call: DeviceCall = Depends(device_call)) -> BorrowOut:
    """Hold a seat for offline use until the borrow ends (or is returned early)."""

    def work(session: Session, caller: Caller) -> BorrowOut | _Refusal:
        now = utcnow()
        request = read_request(body.request, caller.access.vendor_slug, now)
        pools = cloud.find_usable(
            session, caller.container_id, body.product, body.feature, delivery=SEAT_POOLS, now=now
        )
        for pool in pools:
            until = now + seats.borrow_period(pool, body.days)
            holder = seats.Holder(body.user, request.device_id, "borrow")
            result = seats.checkout(
                session, pool, holder, now=now, ttl=until - now, borrow_until=until
            )
            if isinstance(result, seats.Lease):
                claims = protocol.claims(caller.access, pool, now, until) | {
                    "aud": request.device_id,
                    "cnf": {"jkt": request.device_id},
                    "lease": result.lease_id,
                    "fingerprint": request.fingerprint,
                    "lease_until": int(until.timestamp()),
                    "options": dict(pool.options) | {"custom_data": None},
                }
                document = caller.signer().sign(claims, typ=BORROW_TYP)
                return BorrowOut(
                    lease_id=result.lease_id,
                    license_id=pool.id,
                    document=document,
                    expires_at=until,
                )
        return _Refusal(ConflictError("no seat is free to borrow", code="NO_SEAT_AVAILABLE"))

    result = call.run(work)
    if isinstance(result, _Refusal):
        raise result.error
    return result


class ReturnOut(BaseModel):
    lease_id: str
    state: str = "returned"


@router.post("/borrow/returns", response_model=ReturnOut)
async def return_borrow(slug: str, request: Request) -> ReturnOut:
    """An offline return of a borrowed seat: a return proof (``lease`` claim) signed by
    the borrowing device's key (the key is in the proof; its thumbprint must be the
    device the seat was lent to). No device token needed: the proof is the credential."""
    token = (await request.body()).decode("ascii", errors="replace").strip()
    services = services_of(request)

    def work(session: Session) -> ReturnOut:
        vendor = get_vendor_by_slug(session, slug)
        key = ed25519_from_jwk(unverified_claims(token).get("device_key"))
        claims = read_signed_by(token, key, typ=RETURN_TYP, vendor_slug=slug, now=utcnow())
        lease_id = str(claims.get("lease"))
        slot = session.scalar(
            select(SeatSlot).where(SeatSlot.vendor_id == vendor.id, SeatSlot.lease_id == lease_id)
        )
        if slot is not None:
            if slot.holder_key != f"b:{device_id(key)}":
                raise ConflictError("this seat was not lent to this device", code="LEASE_NOT_FOUND")
            seats.release(session, vendor.id, lease_id, now=utcnow())
        return ReturnOut(lease_id=lease_id)

    return await blocking(run_write, services.db, work)


# --- counters --------------------------------------------------------------------------


class ConsumeIn(BaseModel):
    product: str
    feature: str | None = None
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
    return await _consume(call, body)


async def _consume(call: DeviceCall, body: ConsumeIn) -> Response:
    def at_once(connection: CoreConnection, now: datetime) -> protocol.Consumed | None:
        return protocol.consume_units(
            connection, call.presented, body.product, body.feature, body.units, body.key, now=now
        )

    consumed = await call.at_once(at_once)
    if consumed is None:  # a replay, the last units, a low balance: the full service decides
        consumed = await blocking(call.run, _consume_in_full(body))
    return _json(ConsumeOut.model_validate(consumed, from_attributes=True))


def _consume_in_full(body: ConsumeIn) -> Callable[[Session, Caller], protocol.Consumed]:
    def work(session: Session, caller: Caller) -> protocol.Consumed:
        now = utcnow()
        candidates = [
            item
            for item in cloud.find_usable(
                session,
                caller.container_id,
                body.product,
                body.feature,
                delivery=protocol.CLOUD_USES,
                now=now,
            )
            if StoredOptions(item.options).units is not None
        ]
        if not candidates:
            raise ConflictError("no license here counts units", code="NO_COUNTER")
        result = counters.consume(
            session, caller.actor, candidates[0], body.units, body.key, now=now
        )
        return protocol.Consumed(
            license_id=candidates[0].id,
            units=-result.entry.delta,
            balance_after=result.entry.balance_after,
            key=body.key,
            replayed=result.replayed,
        )

    return work
