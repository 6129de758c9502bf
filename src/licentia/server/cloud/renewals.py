"""Heartbeats that arrive together are renewed together: one statement for many.

Heartbeats are most of a seat pool's traffic (a team's clients renew every few
minutes, all day). Each was a statement and a commit of its own, and the database's
share of a heartbeat (executing and committing one UPDATE) came to about a third of
the machine's work for it. Here, on PostgreSQL, the heartbeats one worker receives
while a renewal statement is on its way go out together in the next one
(:class:`licentia.server.db.batches.Batches`), renewed by :func:`renew_many`: one
round trip and one commit for the lot.

A heartbeat the statement did not renew (a stale fence, a lease gone, a wrong token,
anything), or any failure of the statement, answers None: the caller then runs the
heartbeat alone (:func:`protocol.renew_seat`), which says exactly why.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, null, update

from licentia.domain.templates import OPTION_DEFAULTS
from licentia.server.cloud.access import (
    DeviceAccess,
    access_query,
    seen_lately,
    touch_device,
    verify_access,
)
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.cloud.protocol import (
    GRANT_COLUMNS,
    LeaseCall,
    Presented,
    SeatGrant,
    device_access_holds,
    lease_call_arrays,
    lease_calls_table,
    seat_grant,
)
from licentia.server.db.base import utcnow
from licentia.server.db.batches import Batches
from licentia.server.db.core import CoreConnection
from licentia.server.db.runner import Runner
from licentia.server.keys.master import MasterKey
from licentia.server.keys.models import SigningKey
from licentia.server.keys.services import CURRENT
from licentia.server.licenses.models import License
from licentia.server.seats.models import SeatSlot
from licentia.server.seats.services import Lease
from licentia.server.tenancy.models import Vendor

log = logging.getLogger("licentia.seats")


def _renew_many() -> Any:
    """PostgreSQL: the renewals of several heartbeats in one statement, each checking
    its device's access in the WHERE clause; a row back per renewed lease (with what
    the answer needs), none for a heartbeat where anything is not as it should be."""
    wanted = lease_calls_table()
    seconds = func.coalesce(
        License.options["seat_lease_seconds"].as_integer(), OPTION_DEFAULTS.seat_lease_seconds
    )
    now = bindparam("now", type_=SeatSlot.expires_at.type)
    return (
        update(SeatSlot)
        .where(
            *device_access_holds(wanted.c.slug, wanted.c.prefix, wanted.c.digest),
            SigningKey.vendor_id == Vendor.id,
            SigningKey.status == CURRENT,
            SeatSlot.vendor_id == CloudDevice.vendor_id,
            SeatSlot.lease_id == wanted.c.lease,
            SeatSlot.fence == wanted.c.fence,
            SeatSlot.borrowed.is_(False),
            License.id == SeatSlot.license_id,
            License.container_id == CloudContainer.id,
        )
        .values(expires_at=now + func.make_interval(0, 0, 0, 0, 0, 0, seconds), released_at=null())
        .returning(
            *access_query().selected_columns,
            SeatSlot.lease_id.label("lease_id"),
            *GRANT_COLUMNS,
            SeatSlot.expires_at.label("expires_at"),
        )
    )


_RENEW_MANY = _renew_many()


def renew_many(
    connection: CoreConnection, renewals: list[LeaseCall], *, now: datetime
) -> dict[str, Any]:
    """PostgreSQL only: renew each heartbeat's lease whose access, container and fence
    hold, in one statement. Returns the renewed rows by lease id; a heartbeat missing
    from them renewed nothing, and :func:`protocol.renew_seat` then says why. Each
    lease may appear once in ``renewals``."""
    parameters = lease_call_arrays(renewals) | {"now": now}
    return {row.lease_id: row for row in connection.execute(_RENEW_MANY, parameters).all()}


def renewed_grant(
    master: MasterKey, renewal: LeaseCall, row: Any, *, now: datetime
) -> tuple[SeatGrant, DeviceAccess]:
    """The answer to a heartbeat that :func:`renew_many` renewed (``row``), and the
    device's access (to note its visit: :func:`touch_device`)."""
    access = verify_access(row, renewal.who.token)
    lease = Lease(renewal.lease_id, row.id, renewal.fence, row.expires_at)
    return seat_grant(master, access, row, lease, now), access


class Renewals:
    """Heartbeats renewed in batches (PostgreSQL: the statement uses arrays)."""

    def __init__(self, runner: Runner, master: MasterKey) -> None:
        self._runner = runner
        self._master = master
        # Two heartbeats of one lease at once are answered by a statement each.
        self._batches: Batches[LeaseCall, Any] = Batches(
            self._renew_all, key=lambda renewal: renewal.lease_id, share=False
        )

    async def renew(self, who: Presented, lease_id: str, fence: int) -> SeatGrant | None:
        """The heartbeat's answer if it was renewed with others, else None."""
        if not self._runner.postgresql:
            return None
        renewal = LeaseCall(who, lease_id, fence)
        try:
            row = await self._batches.ask(renewal)
        except Exception:  # the heartbeat then runs alone and reports its own error
            log.warning("renewing heartbeats together failed", exc_info=True)
            return None
        if row is None:
            return None
        now = utcnow()
        grant, access = renewed_grant(self._master, renewal, row, now=now)
        if not seen_lately(access, now):
            await self._runner.autocommit(lambda connection: touch_device(connection, access, now))
        return grant

    async def _renew_all(self, batch: list[LeaseCall]) -> list[Any]:
        now = utcnow()
        rows = await self._runner.autocommit(
            lambda connection: renew_many(connection, batch, now=now)
        )
        return [rows.get(renewal.lease_id) for renewal in batch]
