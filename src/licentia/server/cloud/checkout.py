"""A seat checkout: the fast path beside the full one, and the line of waiters.

The rule, in one place:

- a checkout that nobody waits ahead of takes the lowest free seat of the first
  usable pool with its checkout event, in two statements
  (:func:`checkout_at_once`, :func:`licentia.server.cloud.protocol.take_seat`);
- anything else runs the full checkout (:func:`checkout_in_line`) in a transaction
  per try: a holder coming back to its own seat (a reconnect) never waits; while
  others wait, as many callers as there are free seats may go at once, first come
  first served; a caller that may not go, or finds no free seat, is refused with
  ``NO_SEAT_AVAILABLE``, and every refusal answered is recorded as a ``deny`` event,
  in the transaction that decided it, with the seats that were not free to the
  caller (``in_use``: held, as one count saw them, or promised to those ahead);
- with ``wait_seconds`` the caller joins the line (a waiter that gives up leaves it)
  and tries again until a seat is free or its time is up.

The seat limit itself is the conditional UPDATE's (:mod:`licentia.server.seats`);
the line only decides who tries first.
"""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from licentia.domain.errors import ConflictError
from licentia.domain.templates import StoredOptions
from licentia.server.cloud import protocol
from licentia.server.cloud import services as cloud
from licentia.server.cloud.calls import Caller, as_device
from licentia.server.cloud.protocol import Presented, SeatGrant, SeatWanted
from licentia.server.db.base import utcnow
from licentia.server.db.runner import Runner
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.observability.metrics import SEAT_CHECKOUTS, SEAT_DENIALS
from licentia.server.seats import services as seats

LINE = timedelta(seconds=5)  # a waiter that stops asking leaves the line after this


async def checkout(
    runner: Runner, master: MasterKey, who: Presented, wanted: SeatWanted, *, wait_seconds: float
) -> SeatGrant:
    """A seat for ``wanted``'s holder (its own back, or a free one). Raises
    ConflictError ``NO_SEAT_AVAILABLE`` (``queued`` when others wait ahead),
    ``SEAT_HELD_EXCLUSIVELY``, and the access and license errors."""
    try:
        grant = await _checkout(runner, master, who, wanted, wait_seconds=wait_seconds)
    except ConflictError as error:
        if error.code in DENIALS:  # the product is the container's: a bounded label
            SEAT_DENIALS.labels(who.slug, wanted.product, error.code).inc()
        raise
    if not grant.reconnected:
        SEAT_CHECKOUTS.labels(who.slug, wanted.product).inc()
    return grant


DENIALS = frozenset({"NO_SEAT_AVAILABLE", "SEAT_HELD_EXCLUSIVELY"})


async def _checkout(
    runner: Runner, master: MasterKey, who: Presented, wanted: SeatWanted, *, wait_seconds: float
) -> SeatGrant:
    if wait_seconds == 0:  # the common case first, in two statements
        grant = await checkout_at_once(runner, master, who, wanted)
        if grant is not None:
            return grant
    return await checkout_in_line(runner, master, who, wanted, wait_seconds=wait_seconds)


async def checkout_at_once(
    runner: Runner, master: MasterKey, who: Presented, wanted: SeatWanted
) -> SeatGrant | None:
    """The fast path: a new lease in two statements, or None (having taken nothing)."""
    return await runner.autocommit(
        lambda c: protocol.take_seat(c, master, who, wanted, now=utcnow())
    )


async def checkout_in_line(
    runner: Runner, master: MasterKey, who: Presented, wanted: SeatWanted, *, wait_seconds: float
) -> SeatGrant:
    """The full path, in a transaction per try: reconnects, denials, waiting."""
    waiter = None
    if wait_seconds > 0:
        waiter = await as_device(runner, master, who, lambda s, c: _enqueue(s, c, wanted))
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    try:
        while True:
            last = time.monotonic() + delay > deadline  # a refusal now is the answer
            result = await as_device(
                runner,
                master,
                who,
                functools.partial(_try_checkout, wanted=wanted, waiter=waiter, last=last),
            )
            if isinstance(result, SeatGrant):
                return result
            if last:
                raise result.error  # its denial is committed
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
    finally:
        if waiter is not None:  # a waiter that gives up must not block the line behind it
            await as_device(runner, master, who, lambda s, _c: seats.leave_queue(s, waiter))


@dataclass(frozen=True)
class _Refusal:
    """A refusal to raise once its deny event is committed."""

    error: ConflictError


def _queue(caller: Caller, wanted: SeatWanted) -> str:
    return caller.container_id + wanted.queue_suffix()


def _enqueue(session: Session, caller: Caller, wanted: SeatWanted) -> str:
    return seats.enqueue(session, caller.vendor_id, _queue(caller, wanted), now=utcnow(), ttl=LINE)


def _try_checkout(
    session: Session, caller: Caller, *, wanted: SeatWanted, waiter: str | None, last: bool
) -> SeatGrant | _Refusal:
    """One try; a refusal that is the ``last`` try's is recorded (a ``deny`` event), in
    the transaction that decided it."""
    now = utcnow()
    pools = cloud.find_usable(
        session,
        caller.container_id,
        wanted.product,
        wanted.feature,
        delivery=protocol.SEAT_POOLS,
        now=now,
    )
    holder = wanted.holder(caller.access.device_id)
    if not _may_try(session, _queue(caller, wanted), waiter, pools, holder, now):
        # Every seat is held or promised to those waiting ahead: none is this caller's.
        pool = pools[0]
        size = StoredOptions(pool.options).seats or 0
        key = holder.key(StoredOptions(pool.options).seat_counting)
        if last:
            seats.record_denial(
                session, seats.Denied(pool.id, pool.vendor_id, key, size, size), now
            )
        return _Refusal(
            ConflictError("others are waiting for a seat", code="NO_SEAT_AVAILABLE", queued=True)
        )
    denied: seats.Denied | None = None
    for pool in pools:
        ttl = timedelta(seconds=protocol.lease_seconds(pool.options))
        result = seats.checkout(session, pool, holder, now=now, ttl=ttl)
        if isinstance(result, seats.Lease):
            if waiter is not None:
                seats.leave_queue(session, waiter)
            return protocol.seat_grant(caller.master, caller.access, pool, result, now)
        denied = result
    assert denied is not None
    if last:
        seats.record_denial(session, denied, now)
    return _Refusal(
        ConflictError(
            f"all {denied.seats} seats are in use",
            code=denied.code,
            in_use=denied.in_use,
            seats=denied.seats,
        )
    )


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
    if seats.first_in_line(session, queue, waiter, now=now, ttl=LINE):
        return True
    if any(seats.holds_seat(session, pool, holder) for pool in pools):
        return True
    free = sum(seats.free_seats(session, pool, now) for pool in pools)
    return free > 1 and seats.first_in_line(session, queue, waiter, now=now, ttl=LINE, free=free)
