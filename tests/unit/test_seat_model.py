"""Seat leases, as a state machine: the seat services on a real database against a
model small enough to be obviously right.

Hypothesis drives checkouts (new and reconnecting; through the full service and through
the hot path's one statement), heartbeats (current and stale),
releases, borrows, the expiry sweep and the passing of time (a fake ``now`` handed to
every service) on a pool of three seats shared by five holders. After every step the
database must agree with the model slot by slot, and the invariants hold: never more
leases than seats, fences only grow, a stale holder cannot extend a seat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import select

from licentia.domain.errors import ConflictError, NotFoundError
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database
from licentia.server.db.loop_statements import LoopStatements
from licentia.server.db.runner import Runner
from licentia.server.licenses.models import License
from licentia.server.seats import leases
from licentia.server.seats import services as seats
from licentia.server.seats.models import SeatSlot
from tests.factories import VendorFactory

SEATS, TTL = 3, timedelta(seconds=60)
HOLDERS = [seats.Holder(f"user{n}", f"pc{n % 2}", f"proc{n}") for n in range(5)]


@dataclass(frozen=True)
class Slot:
    """The model of one seat row."""

    holder: str | None = None
    lease: str | None = None
    fence: int = 0
    expires: datetime | None = None
    borrowed: bool = False

    def free(self, now: datetime) -> bool:
        return self.expires is None or self.expires <= now


class Pool:
    """What the seat services should do, in a dozen lines each."""

    def __init__(self) -> None:
        self.slots = [Slot() for _ in range(SEATS)]

    def find(self, **match: object) -> int | None:
        for index, slot in enumerate(self.slots):
            if all(getattr(slot, name) == value for name, value in match.items()):
                return index
        return None

    def checkout(self, key: str, now: datetime, expires: datetime, borrow: bool) -> int | None:
        """The slot the holder gets (its own first, else the lowest free), or None."""
        own = self.find(holder=key)
        if own is not None:
            slot = self.slots[own]
            self.slots[own] = replace(slot, expires=max(expires, slot.expires or now))
            return own
        free = next((i for i, slot in enumerate(self.slots) if slot.free(now)), None)
        if free is not None:
            slot = self.slots[free]
            self.slots[free] = Slot(key, None, slot.fence + 1, expires, borrow)
        return free

    def heartbeat(self, lease: str, fence: int, now: datetime) -> bool:
        index = self.find(lease=lease, fence=fence, borrowed=False)
        if index is not None:
            self.slots[index] = replace(self.slots[index], expires=now + TTL)
        return index is not None

    def release(self, lease: str, now: datetime) -> bool:
        index = self.find(lease=lease)
        if index is not None:
            fence = self.slots[index].fence
            self.slots[index] = Slot(None, None, fence, now, False)
        return index is not None

    def sweep(self, now: datetime) -> None:
        for index, slot in enumerate(self.slots):
            if slot.lease is not None and slot.free(now):
                self.slots[index] = replace(slot, holder=None, lease=None, borrowed=False)

    def held(self, now: datetime) -> set[str]:
        return {s.lease for s in self.slots if s.lease is not None and not s.free(now)}


def seat_machine(database: Database, new_pool: object) -> type[RuleBasedStateMachine]:
    class SeatMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.license_id = new_pool()  # type: ignore[operator]
            self.now = utcnow()
            self.model = Pool()
            self.leases: list[tuple[str, int]] = []  # every (lease, fence) ever granted
            self.fences = [0] * SEATS

        def _license(self, session) -> License:
            license_ = session.get(License, self.license_id)
            assert license_ is not None
            return license_

        def _checkout(
            self, holder: seats.Holder, borrow_days: int | None, *, at_once: bool = False
        ) -> None:
            until = self.now + timedelta(days=borrow_days) if borrow_days else None
            key = f"b:{holder.device}" if until else holder.key("per_process")
            result: seats.Lease | seats.Denied | None = None
            if at_once:
                result = self._take_at_once(holder, key)
            if result is None:
                with database.transaction() as session:
                    result = seats.checkout(
                        session,
                        self._license(session),
                        holder,
                        now=self.now,
                        ttl=TTL,
                        borrow_until=until,
                    )
            index = self.model.checkout(key, self.now, until or self.now + TTL, bool(until))
            if index is None:
                assert isinstance(result, seats.Denied)
                assert result.in_use == len(self.model.held(self.now)) == SEATS
                return
            assert isinstance(result, seats.Lease), f"the model found slot {index} free"
            slot = self.model.slots[index]
            assert result.reconnected == (slot.lease is not None)
            if slot.lease is None:  # a new holder: the model learns the lease id
                self.model.slots[index] = slot = replace(slot, lease=result.lease_id)
            assert (result.lease_id, result.fence, result.expires_at) == (
                slot.lease,
                slot.fence,
                slot.expires,
            )
            self.leases.append((result.lease_id, result.fence))

        def _take_at_once(self, holder: seats.Holder, key: str) -> seats.Lease | None:
            """The hot path's checkout: a new lease on a free seat in one statement,
            or None for the full checkout to decide (a reconnect, a full pool)."""
            with database.read() as session:
                vendor_id = self._license(session).vendor_id
            claim = leases.Claim(
                self.license_id,
                vendor_id,
                key,
                holder.user,
                holder.device,
                holder.process,
                now=self.now,
                expires_at=self.now + TTL,
            )
            runner = Runner(database, LoopStatements(database.write_engine, size=1))
            lease_id, taken = runner.autocommit_blocking(lambda c: leases.take_free(c, claim))
            if taken.fence is None:
                return None
            return seats.Lease(lease_id, self.license_id, taken.fence, claim.expires_at)

        @rule(holder=st.sampled_from(HOLDERS))
        def checkout(self, holder: seats.Holder) -> None:
            self._checkout(holder, None)

        @rule(holder=st.sampled_from(HOLDERS))
        def checkout_at_once(self, holder: seats.Holder) -> None:
            self._checkout(holder, None, at_once=True)

        @rule(holder=st.sampled_from(HOLDERS), days=st.integers(1, 3))
        def borrow(self, holder: seats.Holder, days: int) -> None:
            self._checkout(holder, days)

        @rule(pick=st.integers(0, 10_000))
        def heartbeat(self, pick: int) -> None:
            if not self.leases:
                return
            lease, fence = self.leases[pick % len(self.leases)]
            expected = self.model.heartbeat(lease, fence, self.now)
            try:
                with database.transaction() as session:
                    seats.heartbeat(
                        session,
                        self._license(session).vendor_id,
                        lease,
                        fence,
                        now=self.now,
                        ttl=TTL,
                    )
                extended = True
            except ConflictError as error:
                assert error.code == "SEAT_LOST"
                extended = False
            assert extended == expected, "the heartbeat disagrees with the model"

        @rule(pick=st.integers(0, 10_000))
        def release(self, pick: int) -> None:
            if not self.leases:
                return
            lease, _ = self.leases[pick % len(self.leases)]
            expected = self.model.release(lease, self.now)
            try:
                with database.transaction() as session:
                    seats.release(session, self._license(session).vendor_id, lease, now=self.now)
                released = True
            except NotFoundError:
                released = False
            assert released == expected

        @rule(seconds=st.integers(0, 200))
        def time_passes(self, seconds: int) -> None:
            self.now += timedelta(seconds=seconds)

        @rule(days=st.integers(1, 4))
        def days_pass(self, days: int) -> None:
            self.now += timedelta(days=days)

        @rule()
        def sweep(self) -> None:
            with database.transaction() as session:
                seats.sweep(session, self.now)
            self.model.sweep(self.now)

        @invariant()
        def the_database_agrees_with_the_model(self) -> None:
            with database.read() as session:
                rows = list(
                    session.scalars(
                        select(SeatSlot)
                        .where(SeatSlot.license_id == self.license_id)
                        .order_by(SeatSlot.slot)
                    )
                )
                held = {s.lease_id for s in seats.occupancy(session, self.license_id, self.now)}
            assert [(r.holder_key, r.lease_id, r.fence, r.borrowed) for r in rows] == [
                (s.holder, s.lease, s.fence, s.borrowed) for s in self.model.slots
            ]
            assert held == self.model.held(self.now) and len(held) <= SEATS
            assert all(row.fence >= old for row, old in zip(rows, self.fences, strict=True))
            self.fences = [row.fence for row in rows]

    return SeatMachine


def test_seat_leases_behave_like_the_model(database: Database, vendors: VendorFactory) -> None:
    vendor = vendors.create()

    def new_pool() -> str:
        license_ = vendor.license(
            {"delivery": "seat_pool", "seats": SEATS, "seat_counting": "per_process"}
        )
        with database.transaction() as session:
            created = session.get(License, license_["id"])
            assert created is not None
            seats.ensure_slots(session, created)
        return str(license_["id"])

    run_state_machine_as_test(
        seat_machine(database, new_pool),
        settings=settings(
            max_examples=40,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.parametrize("counting", ["per_user", "per_device", "per_process", "exclusive"])
def test_a_holder_identity_follows_the_counting_mode(counting: str) -> None:
    holder = seats.Holder("ann", "pc1", "42")

    key = holder.key(counting)

    assert (
        key
        == {
            "per_user": "u:ann",
            "per_device": "d:pc1",
            "per_process": "p:pc1:42",
            "exclusive": "d:pc1",
        }[counting]
    )
