"""Heartbeats that arrive together are renewed together: one statement for many.

Heartbeats are most of a seat pool's traffic (a team's clients renew every few
minutes, all day). Each was a statement and a commit of its own, and the database's
share of a heartbeat (executing and committing one UPDATE) came to about a third of
the machine's work for it. Here, on PostgreSQL, the heartbeats one worker receives
while a renewal statement is on its way go out together in the next one
(:class:`licentia.server.db.batches.Batches`), renewed by :func:`protocol.renew_many`:
one round trip and one commit for the lot.

A heartbeat the statement did not renew (a stale fence, a lease gone, a wrong token,
anything), or any failure of the statement, answers None: the caller then runs the
heartbeat alone (:func:`protocol.renew_seat`), which says exactly why.
"""

from __future__ import annotations

import logging
from typing import Any

from licentia.server.cloud import protocol
from licentia.server.cloud.access import seen_lately, touch_device
from licentia.server.cloud.protocol import Presented, Renewal, SeatGrant
from licentia.server.db.base import utcnow
from licentia.server.db.batches import Batches
from licentia.server.db.runner import Runner
from licentia.server.keys.master import MasterKey

log = logging.getLogger("licentia.seats")


class Renewals:
    """Heartbeats renewed in batches (PostgreSQL: the statement uses arrays)."""

    def __init__(self, runner: Runner, master: MasterKey) -> None:
        self._runner = runner
        self._master = master
        # Two heartbeats of one lease at once are answered by a statement each.
        self._batches: Batches[Renewal, Any] = Batches(
            self._renew_all, key=lambda renewal: renewal.lease_id, share=False
        )

    async def renew(self, who: Presented, lease_id: str, fence: int) -> SeatGrant | None:
        """The heartbeat's answer if it was renewed with others, else None."""
        if not self._runner.postgresql:
            return None
        renewal = Renewal(who, lease_id, fence)
        try:
            row = await self._batches.ask(renewal)
        except Exception:  # the heartbeat then runs alone and reports its own error
            log.warning("renewing heartbeats together failed", exc_info=True)
            return None
        if row is None:
            return None
        now = utcnow()
        grant, access = protocol.renewed_grant(self._master, renewal, row, now=now)
        if not seen_lately(access, now):
            await self._runner.autocommit(lambda connection: touch_device(connection, access, now))
        return grant

    async def _renew_all(self, batch: list[Renewal]) -> list[Any]:
        now = utcnow()
        rows = await self._runner.autocommit(
            lambda connection: protocol.renew_many(connection, batch, now=now)
        )
        return [rows.get(renewal.lease_id) for renewal in batch]
