"""A seat checkout: the fast path beside the full one, and the line of waiters.

The rule, in one place:

- a checkout that nobody waits ahead of takes the lowest free seat of the first
  usable pool with its checkout event, in two statements
  (:func:`checkout_at_once`, :func:`licentia.server.cloud.protocol.take_seat`), the
  second shared on PostgreSQL with the checkouts that arrive together
  (:class:`SeatTakes`);
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
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licentia.domain.errors import ConflictError
from licentia.domain.templates import StoredOptions
from licentia.server.cloud import protocol
from licentia.server.cloud import services as cloud
from licentia.server.cloud.access import seen_lately, touch_device
from licentia.server.cloud.calls import Caller, as_device
from licentia.server.cloud.protocol import Presented, SeatGrant, SeatWanted
from licentia.server.db.base import utcnow
from licentia.server.db.batches import Batches
from licentia.server.db.runner import Runner
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.observability.metrics import SEAT_CHECKOUTS, SEAT_DENIALS
from licentia.server.seats import leases
from licentia.server.seats import services as seats

log = logging.getLogger("licentia.seats")
LINE = timedelta(seconds=5)  # a waiter that stops asking leaves the line after this


async def checkout(
    takes: SeatTakes, who: Presented, wanted: SeatWanted, *, wait_seconds: float
) -> SeatGrant:
    """A seat for ``wanted``'s holder (its own back, or a free one). Raises
    ConflictError ``NO_SEAT_AVAILABLE`` (``queued`` when others wait ahead),
    ``SEAT_HELD_EXCLUSIVELY``, and the access and license errors."""
    try:
        grant = await _checkout(takes, who, wanted, wait_seconds=wait_seconds)
    except ConflictError as error:
        if error.code in DENIALS:  # the product is the container's: a bounded label
            SEAT_DENIALS.labels(who.slug, wanted.product, error.code).inc()
        raise
    if not grant.reconnected:
        SEAT_CHECKOUTS.labels(who.slug, wanted.product).inc()
    return grant


DENIALS = frozenset({"NO_SEAT_AVAILABLE", "SEAT_HELD_EXCLUSIVELY"})


async def _checkout(
    takes: SeatTakes, who: Presented, wanted: SeatWanted, *, wait_seconds: float
) -> SeatGrant:
    if wait_seconds == 0:  # the common case first, in two statements
        grant = await takes.take(who, wanted)
        if grant is not None:
            return grant
    return await checkout_in_line(
        takes.runner, takes.master, who, wanted, wait_seconds=wait_seconds
    )


async def checkout_at_once(
    runner: Runner, master: MasterKey, who: Presented, wanted: SeatWanted
) -> SeatGrant | None:
    """The fast path: a new lease in two statements, or None (having taken nothing)."""
    return await runner.autocommit(
        lambda c: protocol.take_seat(c, master, who, wanted, now=utcnow())
    )


class SeatTakes:
    """The fast path's seats taken together: on PostgreSQL, the checkouts one worker
    receives while a take statement is on its way go out together in the next one
    (:class:`licentia.server.db.batches.Batches`, as heartbeats do), each with its own
    access check and choice of pool first (:func:`protocol.claim_seat`), and take
    their seats in one statement (:func:`licentia.server.seats.leases.take_many`).
    Elsewhere a checkout takes its seat alone (:func:`checkout_at_once`)."""

    def __init__(self, runner: Runner, master: MasterKey) -> None:
        self.runner = runner
        self.master = master
        # Two checkouts of one holder at once are taken by a statement each.
        self._batches: Batches[leases.Claim, tuple[str, leases.Taken]] = Batches(
            self._take_all, key=lambda claim: (claim.license_id, claim.holder_key), share=False
        )

    async def take(self, who: Presented, wanted: SeatWanted) -> SeatGrant | None:
        """A new lease, or None having taken nothing: the full checkout decides."""
        if not self.runner.postgresql:
            return await checkout_at_once(self.runner, self.master, who, wanted)
        now = utcnow()
        claimed = await self.runner.autocommit(
            lambda c: protocol.claim_seat(c, who, wanted, now=now)
        )
        if claimed is None:
            return None
        try:
            answer = await self._batches.ask(claimed.claim)
        except IntegrityError:  # the holder took a seat meanwhile: the full path reconnects
            return None
        except Exception:  # the full checkout then says its own error
            log.warning("taking seats together failed", exc_info=True)
            return None
        if answer is None or answer[1].fence is None:
            return None
        access = claimed.access
        if not seen_lately(access, now):
            await self.runner.autocommit(lambda c: touch_device(c, access, utcnow()))
        return claimed.granted(self.master, answer[0], answer[1].fence)

    async def _take_all(self, batch: list[leases.Claim]) -> list[tuple[str, leases.Taken] | None]:
        taken: list[Any] = await self.runner.autocommit(lambda c: leases.take_many(c, batch))
        return taken


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
