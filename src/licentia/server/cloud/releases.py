"""Seat releases that arrive together are done together: one statement for many.

A seat cycle (checkout, heartbeats, release) cost the database a statement and a
commit per release. Here, on PostgreSQL, the releases one worker receives while a
release statement is on its way go out together in the next one
(:class:`licentia.server.db.batches.Batches`), as heartbeats do: each checks its
device's access, its lease and its fence in the WHERE clause, and each freed seat
gets its release event with the seats still in use after it
(:func:`licentia.server.seats.leases.end_many_statement`).

A release the statement did not do (a stale fence, a lease gone, a wrong token), or
any failure of the statement, answers False: the caller then releases alone
(:func:`protocol.release_seat`), which finds out whether the release was harmless or
says what is wrong.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import String, select

from licentia.domain.ids import new_id
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.cloud.protocol import (
    LeaseCall,
    Presented,
    device_access_holds,
    lease_call_arrays,
    lease_calls_table,
)
from licentia.server.db.base import utcnow
from licentia.server.db.batches import Batches
from licentia.server.db.core import CoreConnection
from licentia.server.db.runner import Runner
from licentia.server.licenses.models import License
from licentia.server.seats.leases import end_many_statement
from licentia.server.seats.models import SeatSlot

log = logging.getLogger("licentia.seats")


def _release_many() -> Any:
    wanted = lease_calls_table(("event_ids", "event_id", String), numbered=True)
    found = (
        select(
            SeatSlot.id,
            SeatSlot.license_id,
            SeatSlot.holder_key,
            SeatSlot.vendor_id,
            SeatSlot.expires_at,
            wanted.c.n,
            wanted.c.lease,
            wanted.c.event_id,
        )
        .where(
            *device_access_holds(wanted.c.slug, wanted.c.prefix, wanted.c.digest),
            SeatSlot.vendor_id == CloudDevice.vendor_id,
            SeatSlot.lease_id == wanted.c.lease,
            SeatSlot.fence == wanted.c.fence,
            License.id == SeatSlot.license_id,
            License.container_id == CloudContainer.id,
        )
        .order_by(SeatSlot.id)  # rows locked in one order by every batch
        .with_for_update(of=SeatSlot)
    )
    return end_many_statement(found)


_RELEASE_MANY = _release_many()


def release_many(connection: CoreConnection, releases: list[LeaseCall]) -> list[bool]:
    """PostgreSQL only: free the seat of each release whose access, container, lease
    and fence hold, with its release event, in one statement; whether each was
    released. Each lease may appear once in ``releases``."""
    event_ids = [new_id() for _ in releases]
    parameters = lease_call_arrays(releases) | {"event_ids": event_ids, "now": utcnow()}
    done = {row.id for row in connection.execute(_RELEASE_MANY, parameters).all()}
    return [event_id in done for event_id in event_ids]


class Releases:
    """Releases done in batches (PostgreSQL: the statement uses arrays)."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        # Two releases of one lease at once are done by a statement each.
        self._batches: Batches[LeaseCall, bool] = Batches(
            self._release_all, key=lambda release: release.lease_id, share=False
        )

    async def release(self, who: Presented, lease_id: str, fence: int) -> bool:
        """Whether the seat was released with others (False: nothing was done)."""
        if not self._runner.postgresql:
            return False
        try:
            released = await self._batches.ask(LeaseCall(who, lease_id, fence))
        except Exception:  # the release then runs alone and reports its own error
            log.warning("releasing seats together failed", exc_info=True)
            return False
        return bool(released)

    async def _release_all(self, batch: list[LeaseCall]) -> list[bool | None]:
        done: list[bool] = await self._runner.autocommit(lambda c: release_many(c, batch))
        return list(done)
