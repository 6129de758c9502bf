"""Seat leases: checkout, heartbeat, release, borrow, force-release and the sweep.

Each seat of a pool is a row (a slot). Taking a seat is a conditional UPDATE of a
free slot ("free" meaning never used, released, or its lease expired — computed
against the clock in the query), so a pool can never hand out more leases than it
has slots, on any backend, with any number of server processes. Each new holder
bumps the slot's ``fence``; heartbeats name lease id *and* fence, so a holder whose
seat was reassigned after it went silent cannot extend somebody else's seat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from licentia.domain.actors import Actor
from licentia.domain.errors import ConflictError, NotFoundError, ValidationError
from licentia.domain.ids import new_id
from licentia.domain.templates import Delivery, StoredOptions
from licentia.domain.webhooks import SEAT_DENIED_WINDOW_SECONDS
from licentia.server.audit.services import record
from licentia.server.licenses.models import License
from licentia.server.seats import leases
from licentia.server.seats.models import SeatEvent, SeatSlot, SeatWaiter
from licentia.server.webhooks import outbox


@dataclass(frozen=True)
class Holder:
    """Who asks for a seat; the template's counting mode decides what identifies them.

    ``device`` is who the server authenticated (a cloud device's id, a borrowing
    device's key id), never a name the caller chose: no other device can name a
    holder and come back to its seat. ``device_name`` is what the seat shows."""

    user: str
    device: str
    process: str
    device_name: str | None = None

    def key(self, counting: str) -> str:
        if counting == "per_user":
            return f"u:{self.user}"
        if counting == "per_process":
            return f"p:{self.device}:{self.process}"
        return f"d:{self.device}"  # per_device and exclusive


@dataclass(frozen=True)
class Lease:
    lease_id: str
    license_id: str
    fence: int
    expires_at: datetime
    reconnected: bool = False


@dataclass(frozen=True)
class Denied:
    """No seat for ``holder_key``: ``in_use`` of ``seats`` were not free to it (as the
    statement that decided saw them). :func:`record_denial` records it."""

    license_id: str
    vendor_id: str
    holder_key: str
    in_use: int
    seats: int
    code: str = "NO_SEAT_AVAILABLE"


def ensure_slots(session: Session, license_: License) -> None:
    """Create the pool's slots (one per seat) if it has none yet."""
    options = StoredOptions(license_.options)
    seats = options.seats
    if options.delivery is not Delivery.SEAT_POOL or not seats:
        return
    have = (
        session.scalar(
            select(func.count()).select_from(SeatSlot).where(SeatSlot.license_id == license_.id)
        )
        or 0
    )
    session.add_all(
        SeatSlot(vendor_id=license_.vendor_id, license_id=license_.id, slot=number, fence=0)
        for number in range(have + 1, int(seats) + 1)
    )
    session.flush()


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(SeatSlot.expires_at.is_(None), SeatSlot.expires_at <= now)


def checkout(
    session: Session,
    license_: License,
    holder: Holder,
    *,
    now: datetime,
    ttl: timedelta,
    borrow_until: datetime | None = None,
) -> Lease | Denied:
    """A seat for ``holder``: its own seat back if it still has one (reconnect), else a
    free one. Returns Denied when none is free, as one count of the seats in use saw
    it (the caller records the refusal it answers: :func:`record_denial`); raises
    ConflictError ``SEAT_HELD_EXCLUSIVELY`` when another process of the device holds
    an exclusive seat."""
    counting = StoredOptions(license_.options).seat_counting
    key = holder.key(counting) if borrow_until is None else f"b:{holder.device}"
    expires = borrow_until or now + ttl
    own = session.scalar(
        select(SeatSlot)
        .where(SeatSlot.license_id == license_.id, SeatSlot.holder_key == key)
        .with_for_update()
    )
    if own is not None:
        return _reconnect(session, own, holder, counting, now=now, expires=expires)
    seats = StoredOptions(license_.options).seats or 0
    for _ in range(_TRIES):
        lease = _take_free(
            session,
            license_,
            holder,
            key,
            now=now,
            expires=expires,
            borrow=borrow_until is not None,
        )
        if lease is not None:
            return lease
        # The denial is decided by this one count: a seat freed since the search
        # (a release committed meanwhile) is looked for again, never denied.
        in_use = _in_use(session, license_.id, now)
        if in_use >= seats:
            break
    return Denied(license_.id, license_.vendor_id, key, in_use, seats)


_TRIES = 3  # searches for a free seat while releases keep freeing them


def _take_free(
    session: Session,
    license_: License,
    holder: Holder,
    key: str,
    *,
    now: datetime,
    expires: datetime,
    borrow: bool,
) -> Lease | None:
    """A new lease on the lowest free slot, with its event; None if none is free."""
    free = (
        select(SeatSlot.id)
        .where(SeatSlot.license_id == license_.id, _free(now))
        .order_by(SeatSlot.slot)
        .limit(1)
    )
    # Skip the free slots other checkouts are taking right now; if that leaves none,
    # wait for those checkouts to finish, so that a denial only ever comes when the
    # pool is really full.
    candidate = session.scalar(free.with_for_update(skip_locked=True))
    if candidate is None:
        candidate = session.scalar(free.with_for_update())
    if candidate is None:
        return None
    lease_id = new_id()
    taken = session.execute(
        update(SeatSlot)
        .where(SeatSlot.id == candidate, _free(now))
        .values(
            holder_key=key,
            lease_id=lease_id,
            fence=SeatSlot.fence + 1,
            acquired_at=now,
            expires_at=expires,
            released_at=None,
            borrowed=borrow,
            user_name=holder.user,
            device_name=holder.device_name or holder.device,
            process_id=holder.process,
        )
        .returning(SeatSlot.fence)
    ).first()
    if taken is None:
        return None
    _event(session, license_, "borrow" if borrow else "checkout", lease_id, key, now)
    return Lease(lease_id, license_.id, int(taken[0]), expires)


def record_denial(session: Session, denied: Denied, now: datetime) -> None:
    """Record a refusal answered to a caller (a ``deny`` event with its ``in_use``),
    and tell the vendor's webhooks: the first denial of a pool in each minute writes a
    ``seat.denied`` event, the others of that minute only their ``deny`` row (a full
    pool may refuse a client every few seconds; the usage reports count each one)."""
    window = int(now.timestamp()) // SEAT_DENIED_WINDOW_SECONDS
    outbox.emit_once(
        session,
        f"seat.denied:{denied.license_id}:{window}",
        vendor_id=denied.vendor_id,
        event_type="seat.denied",
        object_type="license",
        object_id=denied.license_id,
        data={
            "id": denied.license_id,
            "holder_key": denied.holder_key,
            "in_use": denied.in_use,
            "seats": denied.seats,
            "window_seconds": SEAT_DENIED_WINDOW_SECONDS,
        },
    )
    session.add(
        SeatEvent(
            vendor_id=denied.vendor_id,
            license_id=denied.license_id,
            kind="deny",
            lease_id=None,
            holder_key=denied.holder_key,
            in_use=denied.in_use,
            at=now,
        )
    )
    session.flush()


def _reconnect(
    session: Session,
    own: SeatSlot,
    holder: Holder,
    counting: str,
    *,
    now: datetime,
    expires: datetime,
) -> Lease:
    active = own.expires_at is not None and own.expires_at > now
    if counting == "exclusive" and active and own.process_id != holder.process:
        raise ConflictError(
            "another instance on this device holds the seat", code="SEAT_HELD_EXCLUSIVELY"
        )
    if own.lease_id is None:  # released earlier: a fresh lease on the same slot
        own.lease_id, own.fence, own.acquired_at = new_id(), own.fence + 1, now
    own.expires_at, own.released_at, own.process_id = (
        max(expires, own.expires_at or now),
        None,
        holder.process,
    )
    session.flush()
    assert own.lease_id is not None
    return Lease(own.lease_id, own.license_id, own.fence, own.expires_at, reconnected=True)


def heartbeat(
    session: Session, vendor_id: str, lease_id: str, fence: int, *, now: datetime, ttl: timedelta
) -> Lease:
    """Extend a lease. Raises ConflictError ``SEAT_LOST`` if the seat was released,
    force-released or reassigned (the fence moved on)."""
    license_id = leases.renew(session.connection(), vendor_id, lease_id, fence, until=now + ttl)
    return Lease(lease_id, license_id, fence, now + ttl)


def release(
    session: Session, vendor_id: str, lease_id: str, *, now: datetime, kind: str = "release"
) -> str:
    """Free a seat at once; returns its license id. Raises NotFoundError for a lease id
    that holds no seat here (never existed, or released already)."""
    license_id = leases.end(session.connection(), vendor_id, lease_id, now=now, kind=kind)
    if license_id is None:
        raise NotFoundError("seat lease", lease_id, code="LEASE_NOT_FOUND")
    return license_id


def force_release(
    session: Session, actor: Actor, license_id: str, lease_id: str, *, now: datetime
) -> None:
    """The vendor or customer admin frees somebody's seat."""
    assert actor.vendor_id is not None
    slot = session.scalar(
        select(SeatSlot).where(SeatSlot.license_id == license_id, SeatSlot.lease_id == lease_id)
    )
    if slot is None:
        raise NotFoundError("seat lease", lease_id, code="LEASE_NOT_FOUND")
    release(session, actor.vendor_id, lease_id, now=now, kind="force_release")
    record(
        session, actor, "seat.force_released", "license", license_id, after={"lease_id": lease_id}
    )


def sweep(session: Session, now: datetime, *, limit: int = 1000) -> int:
    """Record and clear leases that expired without a release. Not needed for
    correctness (expiry is computed in every query); it keeps the history complete."""
    expired = list(
        session.scalars(
            select(SeatSlot)
            .where(SeatSlot.expires_at <= now, SeatSlot.lease_id.is_not(None))
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for slot in expired:
        session.add(
            SeatEvent(
                vendor_id=slot.vendor_id,
                license_id=slot.license_id,
                kind="expire",
                lease_id=slot.lease_id,
                holder_key=slot.holder_key,
                in_use=0,
                at=now,
            )
        )
        slot.lease_id, slot.holder_key, slot.released_at, slot.borrowed = None, None, now, False
    session.flush()
    return len(expired)


def occupancy(session: Session, license_id: str, now: datetime) -> list[SeatSlot]:
    """The seats in use right now."""
    return list(
        session.scalars(
            select(SeatSlot)
            .where(SeatSlot.license_id == license_id, SeatSlot.expires_at > now)
            .order_by(SeatSlot.slot)
        )
    )


def occupancy_query(license_id: str, now: datetime) -> Select[SeatSlot]:
    """The seats in use at ``now``, for a caller that pages them (by ``SeatSlot.slot``)."""
    return select(SeatSlot).where(SeatSlot.license_id == license_id, SeatSlot.expires_at > now)


def seat_events_query(license_id: str, kind: str | None = None) -> Select[SeatEvent]:
    """The pool's seat history, for a caller that pages it (by ``SeatEvent.id``)."""
    query = select(SeatEvent).where(SeatEvent.license_id == license_id)
    return query if kind is None else query.where(SeatEvent.kind == kind)


def seat_events(session: Session, license_id: str, kind: str | None = None) -> list[SeatEvent]:
    query = select(SeatEvent).where(SeatEvent.license_id == license_id)
    if kind is not None:
        query = query.where(SeatEvent.kind == kind)
    return list(session.scalars(query.order_by(SeatEvent.at, SeatEvent.id)))


def borrow_period(license_: License, days: int) -> timedelta:
    """Raises ValidationError if borrowing is off or ``days`` exceeds the template's maximum."""
    limit = StoredOptions(license_.options).max_borrow_days
    if not limit:
        raise ValidationError(
            "this license cannot be borrowed", field="days", code="BORROW_NOT_ALLOWED"
        )
    if not 1 <= days <= int(limit):
        raise ValidationError(f"borrow for 1 to {limit} days", field="days", code="BORROW_TOO_LONG")
    return timedelta(days=days)


def _in_use(session: Session, license_id: str, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(SeatSlot)
            .where(SeatSlot.license_id == license_id, SeatSlot.expires_at > now)
        )
        or 0
    )


def _event(
    session: Session, license_: License, kind: str, lease_id: str, key: str, now: datetime
) -> None:
    session.add(
        SeatEvent(
            vendor_id=license_.vendor_id,
            license_id=license_.id,
            kind=kind,
            lease_id=lease_id,
            holder_key=key,
            in_use=0,
            at=now,
        )
    )


# --- queueing --------------------------------------------------------------------------


def enqueue(session: Session, vendor_id: str, queue: str, *, now: datetime, ttl: timedelta) -> str:
    """Join the queue for a seat; returns the waiter id (committed by the caller first,
    so later arrivals see it ahead of them)."""
    waiter = SeatWaiter(vendor_id=vendor_id, queue=queue, enqueued_at=now, expires_at=now + ttl)
    session.add(waiter)
    session.flush()
    return waiter.id


def first_in_line(
    session: Session,
    queue: str,
    waiter_id: str | None,
    *,
    now: datetime,
    ttl: timedelta,
    free: int = 1,
) -> bool:
    """True if the caller may try for one of ``free`` free seats: a waiter among the
    first ``free`` live waiters, or (``waiter_id`` None: a caller that does not wait)
    fewer live waiters than free seats. A waiter's call also keeps its place alive.
    Only fairness rests on this; the seat limit is the conditional UPDATE's."""
    if waiter_id is not None:
        session.execute(
            update(SeatWaiter).where(SeatWaiter.id == waiter_id).values(expires_at=now + ttl)
        )
    ahead = list(
        session.scalars(
            select(SeatWaiter.id)
            .where(SeatWaiter.queue == queue, SeatWaiter.expires_at > now)
            .order_by(SeatWaiter.enqueued_at, SeatWaiter.id)
            .limit(max(free, 0))
        )
    )
    return waiter_id in ahead if waiter_id is not None else len(ahead) < free


def free_seats(session: Session, license_: License, now: datetime) -> int:
    """How many of the pool's seats nobody holds right now."""
    return (StoredOptions(license_.options).seats or 0) - _in_use(session, license_.id, now)


def holds_seat(session: Session, license_: License, holder: Holder) -> bool:
    """True if ``holder`` has a slot in this pool (a checkout would reconnect to it)."""
    key = holder.key(StoredOptions(license_.options).seat_counting)
    return (
        session.scalar(
            select(SeatSlot.id).where(
                SeatSlot.license_id == license_.id, SeatSlot.holder_key == key
            )
        )
        is not None
    )


def leave_queue(session: Session, waiter_id: str) -> None:
    waiter = session.get(SeatWaiter, waiter_id)
    if waiter is not None:
        session.delete(waiter)
        session.flush()
