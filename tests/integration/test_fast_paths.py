"""Each fast path of the device and cloud protocols answers as its full path does.

The calls devices make all day have a fast path beside the full one
(activation/calls.py, cloud/calls.py, cloud/checkout.py). Each test below sends the
same kind of request down both paths and compares what a device would get; and
where the fast path cannot answer, it answers None having changed nothing, while
the full path decides.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from licentia.domain.errors import ConflictError
from licentia.formats.device import unverified_claims
from licentia.server.activation import calls as device_calls
from licentia.server.activation.calls import DeviceMessage
from licentia.server.activation.services import NotModified, UpdateIssued
from licentia.server.api.context import Services
from licentia.server.cloud import calls, protocol
from licentia.server.cloud.checkout import checkout_at_once, checkout_in_line
from licentia.server.cloud.protocol import LeaseCall, Presented, SeatGrant, SeatWanted, UnitsWanted
from licentia.server.cloud.releases import release_many
from licentia.server.counters.services import UnitsClaim, consume_many
from licentia.server.db.base import utcnow
from licentia.server.seats import leases
from tests.factories import VendorHandle
from tests.integration.test_cloud import CloudUser, _container
from tests.integration.test_device_sync import _activated


def _services(vendor: VendorHandle) -> Services:
    services: Services = vendor.client.app.state.services  # type: ignore[attr-defined]
    return services


def _run(awaitable: Any) -> Any:
    async def run() -> Any:
        return await awaitable

    return asyncio.run(run())


def test_an_unchanged_sync_answers_as_the_full_sync(vendors) -> None:
    vendor = vendors.create()
    services = _services(vendor)
    device, _listed = _activated(vendor)

    def message() -> DeviceMessage:
        return DeviceMessage(vendor.slug, device.request("sync"))

    fast = _run(device_calls.sync_unchanged(services.runner, message()))
    full = _run(
        device_calls.sync_in_full(services.runner, services.master, message(), conditional=True)
    )
    assert fast is not None and isinstance(full, NotModified)
    assert fast.state == full.state == device.state
    device.state = "a-state-never-issued"
    assert _run(device_calls.sync_unchanged(services.runner, message())) is None
    behind = _run(
        device_calls.sync_in_full(services.runner, services.master, message(), conditional=True)
    )
    assert isinstance(behind, UpdateIssued) and behind.seq == device.seq + 1


def _seat_pool(vendors, seats: int) -> tuple[VendorHandle, Services, Presented, str]:
    vendor = vendors.create()
    credential, product, _ = _container(
        vendor, delivery="seat_pool", seats=seats, seat_counting="per_process", units=50
    )
    user = CloudUser(vendor, credential)
    return vendor, _services(vendor), Presented(vendor.slug, user.token), product


def _same_grant(fast: SeatGrant, full: SeatGrant) -> None:
    assert (fast.license_id, fast.ttl_seconds, fast.reconnected) == (
        full.license_id,
        full.ttl_seconds,
        full.reconnected,
    )
    fast_claims, full_claims = unverified_claims(fast.token), unverified_claims(full.token)
    assert fast_claims.keys() == full_claims.keys()
    assert (fast_claims["lease"], fast_claims["fence"]) == (fast.lease_id, fast.fence)
    assert (full_claims["lease"], full_claims["fence"]) == (full.lease_id, full.fence)


def test_a_checkout_at_once_grants_what_the_full_checkout_grants(vendors) -> None:
    _vendor, services, who, product = _seat_pool(vendors, seats=2)
    runner, master = services.runner, services.master
    ann, bob = (SeatWanted(product, None, name, "pc", name) for name in ("ann", "bob"))
    fast = _run(checkout_at_once(runner, master, who, ann))
    full = _run(checkout_in_line(runner, master, who, bob, wait_seconds=0))
    assert fast is not None and fast.fence == full.fence == 1
    _same_grant(fast, full)
    # A holder coming back: the fast path leaves it to the full one, which reconnects.
    assert _run(checkout_at_once(runner, master, who, ann)) is None
    again = _run(checkout_in_line(runner, master, who, ann, wait_seconds=0))
    assert (again.lease_id, again.reconnected) == (fast.lease_id, True)
    # A full pool: the fast path takes nothing, the full one refuses.
    carl = SeatWanted(product, None, "carl", "pc", "carl")
    assert _run(checkout_at_once(runner, master, who, carl)) is None
    with pytest.raises(ConflictError) as refused:
        _run(checkout_in_line(runner, master, who, carl, wait_seconds=0))
    assert refused.value.code == "NO_SEAT_AVAILABLE"


def test_heartbeats_renewed_together_answer_as_a_heartbeat_alone(vendors, backend) -> None:
    _vendor, services, who, product = _seat_pool(vendors, seats=2)
    runner, master = services.runner, services.master
    lease = _run(checkout_at_once(runner, master, who, SeatWanted(product, None, "a", "pc", "1")))
    together = _run(services.renewals.renew(who, lease.lease_id, lease.fence))
    alone = _run(calls.heartbeat_alone(runner, master, who, lease.lease_id, lease.fence))
    if backend == "sqlite":
        assert together is None  # renewed together on PostgreSQL only
    else:
        assert together is not None
        assert (together.lease_id, together.fence) == (alone.lease_id, alone.fence)
        _same_grant(together, alone)
    stale = lease.fence + 1
    assert _run(services.renewals.renew(who, lease.lease_id, stale)) is None
    with pytest.raises(ConflictError) as lost:
        _run(calls.heartbeat_alone(runner, master, who, lease.lease_id, stale))
    assert lost.value.code == "SEAT_LOST"


def test_a_consumption_at_once_counts_as_the_full_consumption(vendors) -> None:
    _vendor, services, who, product = _seat_pool(vendors, seats=1)
    runner, master = services.runner, services.master
    fast = _run(calls.consume_at_once(runner, who, UnitsWanted(product, None, 2, "a")))
    full = _run(calls.consume_in_full(runner, master, who, UnitsWanted(product, None, 2, "b")))
    assert fast is not None
    assert (fast.license_id, fast.units, fast.replayed) == (full.license_id, 2, False)
    assert full.balance_after == fast.balance_after - 2
    # A repeated key: the fast path takes nothing, the full one replays.
    assert _run(calls.consume_at_once(runner, who, UnitsWanted(product, None, 2, "a"))) is None
    replay = _run(calls.consume_in_full(runner, master, who, UnitsWanted(product, None, 2, "a")))
    assert (replay.replayed, replay.balance_after) == (True, fast.balance_after)


def test_consumptions_taken_together_count_as_each_taken_alone(vendors, backend) -> None:
    _vendor, services, who, product = _seat_pool(vendors, seats=1)  # 50 units
    first, second = (UnitsWanted(product, None, 2, key) for key in ("a", "b"))
    together = _run(services.consumptions.consume(who, first))
    alone = _run(calls.consume_at_once(services.runner, who, second))
    assert alone is not None
    if backend == "sqlite":
        assert together is None  # taken together on PostgreSQL only
        return
    assert together is not None
    assert (together.license_id, together.units, together.replayed) == (alone.license_id, 2, False)
    assert (together.balance_after, alone.balance_after) == (48, 46)
    # A key used before: taken by neither fast path; the full one replays it.
    for fast in (services.consumptions.consume, partial(calls.consume_at_once, services.runner)):
        assert _run(fast(who, UnitsWanted(product, None, 2, "a"))) is None


def _claims(services: Services, who: Presented, product: str) -> Callable[[str, int], UnitsClaim]:
    counter = _run(
        services.runner.autocommit(
            lambda c: protocol.find_counter(c, who, product, None, now=utcnow())
        )
    )
    access = counter.access
    return lambda key, units: UnitsClaim(
        counter.license_id, access.vendor_id, access.device_id, units, key, counter.low_balance
    )


def test_a_batch_of_consumptions_takes_all_of_a_counters_claims_or_none(vendors, backend) -> None:
    if backend == "sqlite":
        pytest.skip("consumptions are taken together on PostgreSQL only")
    vendor, services, who, product = _seat_pool(vendors, seats=1)  # 50 units, low mark 5
    claim = _claims(services, who, product)

    def take(*claims: UnitsClaim) -> list[int | None]:
        taken = _run(
            services.runner.autocommit(lambda c: consume_many(c, list(claims), now=utcnow()))
        )
        return [None if item is None else item.balance_after for item in taken]

    assert take(claim("a", 2), claim("b", 3), claim("c", 1)) == [48, 45, 44]
    assert take(claim("d", 1), claim("a", 1)) == [None, None]  # "a" was used
    assert take(claim("e", 30), claim("f", 12)) == [None, None]  # 44 → 2 crosses the mark
    assert take(claim("g", 40), claim("h", 4)) == [None, None]  # 44 → 0: the last units
    assert take(claim("i", 39)) == [5]
    units = vendor.ok("GET", f"/licenses/{claim('x', 1).license_id}/units")
    consumed = [(e["key"], e["balance_after"]) for e in units["ledger"] if e["kind"] == "consume"]
    assert consumed == [("a", 48), ("b", 45), ("c", 44), ("i", 5)]
    assert units["balance"] == units["recomputed_from_ledger"] == 5


def test_seats_released_together_are_recorded_as_released_one_after_the_other(
    vendors, backend
) -> None:
    vendor, services, who, product = _seat_pool(vendors, seats=4)
    runner, master = services.runner, services.master
    wanted = [SeatWanted(product, None, name, "pc", name) for name in ("a", "b", "c", "d")]
    leases = [_run(checkout_at_once(runner, master, who, w)) for w in wanted]
    if backend == "sqlite":
        assert _run(services.releases.release(who, leases[0].lease_id, leases[0].fence)) is False
        return
    stale = leases[0].fence + 1
    batch = [LeaseCall(who, lease.lease_id, lease.fence) for lease in leases[:3]]
    batch.append(LeaseCall(who, leases[3].lease_id, stale))  # released by none
    done = _run(runner.autocommit(lambda c: release_many(c, batch)))
    assert done == [True, True, True, False]
    _run(calls.release_alone(runner, who, leases[3].lease_id, leases[3].fence))
    events = vendor.ok(
        "GET", f"/licenses/{leases[0].license_id}/seat-events", params={"kind": "release"}
    )["items"]
    recorded = {e["lease_id"]: e["in_use"] for e in events}
    assert recorded == {lease.lease_id: 3 - n for n, lease in enumerate(leases)}
    # Releasing again, or with a stale fence: nothing is done, by either path.
    assert _run(services.releases.release(who, leases[0].lease_id, leases[0].fence)) is False
    _run(calls.release_alone(runner, who, leases[0].lease_id, leases[0].fence))
    assert len(vendor.ok("GET", f"/licenses/{leases[0].license_id}/seat-events")["items"]) == 8


def test_seats_taken_together_are_granted_as_a_seat_taken_alone(vendors, backend) -> None:
    _vendor, services, who, product = _seat_pool(vendors, seats=3)
    runner, master, takes = services.runner, services.master, services.seat_takes
    ann, bob, cid, dan = (SeatWanted(product, None, n, "pc", n) for n in ("a", "b", "c", "d"))
    together = _run(takes.take(who, ann))
    alone = _run(checkout_at_once(runner, master, who, bob))
    assert together is not None and alone is not None
    assert (together.fence, alone.fence) == (1, 1)
    _same_grant(together, alone)
    # A holder coming back: taken by neither fast path; the full one reconnects.
    assert _run(takes.take(who, ann)) is None
    assert _run(checkout_at_once(runner, master, who, ann)) is None
    if backend == "sqlite":
        return

    # One seat left for two new holders and one coming back, in one statement.
    def claim(wanted: SeatWanted) -> leases.Claim:
        claimed = _run(
            runner.autocommit(lambda c: protocol.claim_seat(c, who, wanted, now=utcnow()))
        )
        assert claimed is not None
        return claimed.claim

    claims = [claim(wanted) for wanted in (cid, dan, ann)]
    taken = _run(runner.autocommit(lambda c: leases.take_many(c, claims)))
    assert [(t.fence, t.holds_own) for _lease, t in taken] == [
        (1, False),
        (None, False),
        (None, True),
    ]
    with pytest.raises(ConflictError) as refused:
        _run(checkout_in_line(runner, master, who, dan, wait_seconds=0))
    assert refused.value.code == "NO_SEAT_AVAILABLE"
