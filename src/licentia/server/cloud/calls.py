"""The cloud protocol's calls, each one unit of work (docs/cloud.md).

A registered device presents its token with every call (:class:`Presented`); each
function here takes what the device asked for as plain values and returns the
protocol's answer values. The calls a device makes all day have a fast path beside
their full path:

- a heartbeat is renewed with the others that arrive together
  (:class:`licentia.server.cloud.renewals.Renewals`), else alone
  (:func:`licentia.server.cloud.protocol.renew_seat`), which says why it failed;
- a release is done with the others that arrive together
  (:class:`licentia.server.cloud.releases.Releases`), else alone
  (:func:`licentia.server.cloud.protocol.release_seat`);
- a consumption takes its units with the others that arrive together
  (:class:`licentia.server.cloud.consumptions.Consumptions`), else alone in one
  statement (:func:`licentia.server.cloud.protocol.consume_units`), else the full
  counter service decides (:func:`consume_in_full`);
- a checkout: :mod:`licentia.server.cloud.checkout`.

Each full path runs in one write transaction, after the device's access check
(:func:`as_device`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import ConflictError, ValidationError
from licentia.domain.templates import StoredOptions
from licentia.formats.device import device_id, ed25519_from_jwk, unverified_claims
from licentia.formats.document_types import ACCESS_TYP, BORROW_TYP, RETURN_TYP
from licentia.server.activation.messages import read_request, read_signed_by
from licentia.server.cloud import protocol
from licentia.server.cloud import services as cloud
from licentia.server.cloud.access import DeviceAccess, touch_device
from licentia.server.cloud.consumptions import Consumptions
from licentia.server.cloud.protocol import Consumed, Presented, SeatGrant, UnitsWanted
from licentia.server.cloud.releases import Releases
from licentia.server.cloud.renewals import Renewals
from licentia.server.counters import services as counters
from licentia.server.db.base import utcnow
from licentia.server.db.runner import Runner
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import Signer
from licentia.server.observability.metrics import UNITS_CONSUMED
from licentia.server.orders.services import (
    TICKET_AT_VENDOR,
    find_ticket,
    ticket_lookup_hash,
    unknown_ticket,
)
from licentia.server.seats import services as seats
from licentia.server.seats.models import SeatSlot
from licentia.server.tenancy.services import get_vendor_by_slug

T = TypeVar("T")


@dataclass(frozen=True)
class Caller:
    """An authenticated device call, inside its unit of work."""

    access: DeviceAccess
    master: MasterKey
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
        return self.access.signer(self.master)


def device_unit(
    master: MasterKey, who: Presented, work: Callable[[Session, Caller], T]
) -> Callable[[Session], T]:
    """``work`` as a unit of work that first checks the device's access (and notes
    its visit)."""

    def unit(session: Session) -> T:
        connection = session.connection()
        access = protocol.authenticate(connection, who)
        touch_device(connection, access, utcnow())
        return work(session, Caller(access, master, who.source_ip))

    return unit


async def as_device(
    runner: Runner, master: MasterKey, who: Presented, work: Callable[[Session, Caller], T]
) -> T:
    """``work`` in one write transaction, after the device's access check."""
    return await runner.transaction(device_unit(master, who, work))


# --- containers and registrations ---------------------------------------------------------


@dataclass(frozen=True)
class Redeemed:
    """A new cloud container: its credential (shown once) and the licenses put in it."""

    container_id: str
    credential: str
    license_ids: list[str]


async def redeem(
    runner: Runner, master: MasterKey, slug: str, ticket_code: str, name: str
) -> Redeemed:
    """Redeem a ticket into a new cloud container for its customer. Raises
    ``ALREADY_REDEEMED`` for a ticket redeemed already, and the ticket's errors.

    A code no ticket of the vendor has (a guess, mostly) is refused after one read,
    on the event loop where the database allows: guessing costs no thread and no
    write transaction (on SQLite, never the process's write lock)."""
    known = {"slug": slug, "code_hash": ticket_lookup_hash(master, ticket_code)}
    found = await runner.first(TICKET_AT_VENDOR, known)
    if found is not None and found.ticket_id is None:
        raise unknown_ticket()

    def work(session: Session) -> Redeemed:
        vendor = get_vendor_by_slug(session, slug)
        ticket = find_ticket(session, vendor.id, master, ticket_code)
        actor = Actor(ActorKind.CUSTOMER, None, vendor.id, frozenset(), None)
        issued, licenses = cloud.put_ticket_into_new_container(session, actor, ticket, name)
        return Redeemed(issued.container.id, issued.credential, [item.id for item in licenses])

    return await runner.transaction(work)


@dataclass(frozen=True)
class Registered:
    """A device registration: its token is shown once."""

    device_id: str
    container_id: str
    token: str


async def register(runner: Runner, slug: str, credential: str, name: str) -> Registered:
    """Exchange the container credential for a device registration; raises as
    :func:`licentia.server.cloud.services.register_device`."""

    def work(session: Session) -> Registered:
        vendor = get_vendor_by_slug(session, slug)
        registration = cloud.register_device(session, vendor.id, credential, name)
        device = registration.device
        return Registered(device.id, device.container_id, registration.token)

    return await runner.transaction(work)


async def deregister(runner: Runner, master: MasterKey, who: Presented) -> None:
    """The calling device deregisters itself; its token stops working at once."""

    def work(session: Session, caller: Caller) -> None:
        container = cloud.get_container(session, caller.vendor_id, caller.container_id)
        cloud.deregister_device(session, caller.actor, container, caller.access.device_id)

    await as_device(runner, master, who, work)


# --- check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    token: str
    license_id: str
    expires_at: datetime


async def check(
    runner: Runner, master: MasterKey, who: Presented, product: str, feature: str | None
) -> AccessToken:
    """May this device use ``product`` (``feature``) now? A short-lived access token;
    raises as :func:`licentia.server.cloud.services.choose_usable`."""

    def work(session: Session, caller: Caller) -> AccessToken:
        now = utcnow()
        (license_, *_) = cloud.find_usable(
            session, caller.container_id, product, feature, delivery=protocol.CLOUD_USES, now=now
        )
        ttl = timedelta(seconds=StoredOptions(license_.options).access_token_seconds)
        expires = min(now + ttl, license_.valid_until or now + ttl)
        claims = protocol.claims(caller.access, license_, now, expires) | {"scope": feature}
        token = caller.signer().sign(claims, typ=ACCESS_TYP)
        return AccessToken(token, license_.id, expires)

    return await as_device(runner, master, who, work)


# --- heartbeat and release ------------------------------------------------------------------


async def heartbeat(
    runner: Runner,
    renewals: Renewals,
    master: MasterKey,
    who: Presented,
    lease_id: str,
    fence: int,
) -> SeatGrant:
    """Keep a seat. Raises ConflictError ``SEAT_LOST`` if it was released or
    reassigned meanwhile, and the access errors."""
    grant = await renewals.renew(who, lease_id, fence)
    if grant is not None:
        return grant
    return await heartbeat_alone(runner, master, who, lease_id, fence)


async def heartbeat_alone(
    runner: Runner, master: MasterKey, who: Presented, lease_id: str, fence: int
) -> SeatGrant:
    """The full path of a heartbeat (not renewed with others): it says why it fails."""
    return await runner.autocommit(
        lambda c: protocol.renew_seat(c, master, who, lease_id, fence, now=utcnow())
    )


async def release(
    runner: Runner, releases: Releases, who: Presented, lease_id: str, fence: int
) -> None:
    """Free the seat at once (also ends a borrow early), if the lease still has
    ``fence``. Releasing twice, or with a stale fence, is harmless."""
    if await releases.release(who, lease_id, fence):
        return
    await release_alone(runner, who, lease_id, fence)


async def release_alone(runner: Runner, who: Presented, lease_id: str, fence: int) -> None:
    """The full path of a release (not done with others): it says why it fails."""
    await runner.autocommit(lambda c: protocol.release_seat(c, who, lease_id, fence, now=utcnow()))


# --- borrowing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Borrowed:
    lease_id: str
    license_id: str
    document: str  # licentia-borrow+jwt bound to the device; usable offline
    expires_at: datetime


@dataclass(frozen=True)
class BorrowWanted:
    """A borrow as the device asks for it: ``request`` is a device request (op sync)
    naming the device key and fingerprint the seat is lent to."""

    product: str
    feature: str | None
    user: str
    days: int
    request: str


async def borrow(
    runner: Runner, master: MasterKey, who: Presented, wanted: BorrowWanted
) -> Borrowed:
    """Hold a seat for offline use until the borrow ends (or is returned early).
    Raises ConflictError ``NO_SEAT_AVAILABLE`` and the borrowing limits' errors."""

    def work(session: Session, caller: Caller) -> Borrowed | None:
        now = utcnow()
        request = read_request(wanted.request, caller.access.vendor_slug, now)
        pools = cloud.find_usable(
            session,
            caller.container_id,
            wanted.product,
            wanted.feature,
            delivery=protocol.SEAT_POOLS,
            now=now,
        )
        denied: seats.Denied | None = None
        for pool in pools:
            until = now + seats.borrow_period(pool, wanted.days)
            holder = seats.Holder(wanted.user, request.device_id, "borrow")
            result = seats.checkout(
                session, pool, holder, now=now, ttl=until - now, borrow_until=until
            )
            if isinstance(result, seats.Lease):
                claims = protocol.claims(caller.access, pool, now, until) | {
                    "aud": request.device_id,
                    "cnf": {"jkt": request.device_id},
                    "lease": result.lease_id,
                    "fence": result.fence,  # an early return online names it
                    "fingerprint": request.fingerprint,
                    "lease_until": int(until.timestamp()),
                    "options": dict(pool.options) | {"custom_data": None},
                }
                document = caller.signer().sign(claims, typ=BORROW_TYP)
                return Borrowed(result.lease_id, pool.id, document, until)
            denied = result
        if denied is not None:
            seats.record_denial(session, denied, now)
        return None  # the denial is recorded: commit it, then refuse

    borrowed = await as_device(runner, master, who, work)
    if borrowed is None:
        raise ConflictError("no seat is free to borrow", code="NO_SEAT_AVAILABLE")
    return borrowed


MAX_LEASE_ID = 64  # a lease id is a UUID


async def return_borrow(runner: Runner, slug: str, proof: str) -> str:
    """An offline return of a borrowed seat: a return proof (``lease`` claim) signed
    by the borrowing device's key (the key is in the proof; its thumbprint must be
    the device the seat was lent to). Returns the lease id; returning twice is
    harmless. Raises ``LEASE_NOT_FOUND`` for a seat lent to another device, and
    ValidationError for a proof without a lease id."""

    def work(session: Session) -> str:
        vendor = get_vendor_by_slug(session, slug)
        key = ed25519_from_jwk(unverified_claims(proof).get("device_key"))
        claims = read_signed_by(proof, key, typ=RETURN_TYP, vendor_slug=slug, now=utcnow())
        lease_id = claims.get("lease")
        if not isinstance(lease_id, str) or not 0 < len(lease_id) <= MAX_LEASE_ID:
            raise ValidationError("the return proof names no lease (claim 'lease')", field="lease")
        slot = session.scalar(
            select(SeatSlot).where(SeatSlot.vendor_id == vendor.id, SeatSlot.lease_id == lease_id)
        )
        if slot is not None:
            if slot.holder_key != f"b:{device_id(key)}":
                raise ConflictError("this seat was not lent to this device", code="LEASE_NOT_FOUND")
            seats.release(session, vendor.id, lease_id, now=utcnow())
        return lease_id

    return await runner.transaction(work)


# --- counters -------------------------------------------------------------------------------


async def consume(
    runner: Runner,
    consumptions: Consumptions,
    master: MasterKey,
    who: Presented,
    wanted: UnitsWanted,
) -> Consumed:
    """Take units atomically; the same key never counts twice. Raises ConflictError
    ``UNITS_EXHAUSTED``, ``NO_COUNTER`` and the access errors."""
    consumed = await consumptions.consume(who, wanted)
    if consumed is None:
        consumed = await consume_at_once(runner, who, wanted)
    if consumed is None:  # a replay, the last units, a low balance: the full service decides
        consumed = await consume_in_full(runner, master, who, wanted)
    if not consumed.replayed:
        UNITS_CONSUMED.labels(who.slug, wanted.product).inc(consumed.units)
    return consumed


async def consume_at_once(runner: Runner, who: Presented, wanted: UnitsWanted) -> Consumed | None:
    """The fast path: the units in one statement, or None (having taken nothing)."""
    return await runner.autocommit(
        lambda c: protocol.consume_units(
            c, who, wanted.product, wanted.feature, wanted.units, wanted.key, now=utcnow()
        )
    )


async def consume_in_full(
    runner: Runner, master: MasterKey, who: Presented, wanted: UnitsWanted
) -> Consumed:
    """The full path: the counter service in a transaction (replays, low balances)."""

    def work(session: Session, caller: Caller) -> Consumed:
        now = utcnow()
        usable = cloud.find_usable(
            session,
            caller.container_id,
            wanted.product,
            wanted.feature,
            delivery=protocol.CLOUD_USES,
            now=now,
        )
        candidates = [item for item in usable if StoredOptions(item.options).units is not None]
        if not candidates:
            raise ConflictError("no license here counts units", code="NO_COUNTER")
        result = counters.consume(
            session, caller.actor, candidates[0], wanted.units, wanted.key, now=now
        )
        return Consumed(
            license_id=candidates[0].id,
            units=-result.entry.delta,
            balance_after=result.entry.balance_after,
            key=wanted.key,
            replayed=result.replayed,
        )

    return await as_device(runner, master, who, work)
