"""Heartbeats that arrive together are renewed together: one statement for many.

Heartbeats are most of a seat pool's traffic (a team's clients renew every few
minutes, all day). Each was a statement and a commit of its own, and the database's
share of a heartbeat (planning, executing and committing one UPDATE) came to about a
third of the machine's work for it. Here, on PostgreSQL, the heartbeats one worker
receives while a renewal statement is on its way are queued, and the next statement
renews all of them (up to :data:`MOST` at once) with :func:`protocol.renew_many`:
one round trip and one commit for the lot. A lone heartbeat goes out at once, so a
quiet server adds no delay; a busy one adds at most one statement's time.

A heartbeat the statement did not renew (a stale fence, a lease gone, a wrong token,
anything), or any failure of the statement, answers None: the caller then runs the
heartbeat alone (:func:`protocol.renew_seat`), which says exactly why.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from licentia.server.cloud import protocol
from licentia.server.cloud.access import seen_lately, touch_device
from licentia.server.cloud.protocol import Presented, Renewal, SeatGrant
from licentia.server.db.base import utcnow
from licentia.server.db.loop_statements import LoopStatements, NotHere
from licentia.server.keys.master import MasterKey

MOST = 64  # heartbeats per statement
log = logging.getLogger("licentia.seats")


@dataclass
class _Queue:
    """One event loop's heartbeats waiting for the next statement."""

    waiting: list[tuple[Renewal, asyncio.Future[Any]]] = field(default_factory=list)
    sending: bool = False
    sender: asyncio.Task[None] | None = None


class Renewals:
    """The renewal queue of each event loop that serves the app."""

    def __init__(self, statements: LoopStatements, master: MasterKey) -> None:
        self._statements = statements
        self._master = master
        self._queues: dict[asyncio.AbstractEventLoop, _Queue] = {}

    async def renew(self, who: Presented, lease_id: str, fence: int) -> SeatGrant | None:
        """The heartbeat's answer if it was renewed with others, else None."""
        if not self._statements.enabled:
            return None
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(loop, _Queue())
        renewal = Renewal(who, lease_id, fence)
        renewed: asyncio.Future[Any] = loop.create_future()
        queue.waiting.append((renewal, renewed))
        if not queue.sending:
            queue.sending = True
            queue.sender = loop.create_task(self._send(queue))
        row = await renewed
        if row is None:
            return None
        now = utcnow()
        grant, access = protocol.renewed_grant(self._master, renewal, row, now=now)
        if not seen_lately(access, now):
            await self._statements.run(lambda connection: touch_device(connection, access, now))
        return grant

    async def _send(self, queue: _Queue) -> None:
        """Send statements until nobody waits; each takes what waited at its start."""
        try:
            while queue.waiting:
                batch, queue.waiting = _one_per_lease(queue.waiting)
                rows = await self._renew_all([renewal for renewal, _ in batch])
                for renewal, renewed in batch:
                    if not renewed.done():
                        renewed.set_result(rows.get(renewal.lease_id))
        finally:
            queue.sending = False

    async def _renew_all(self, batch: list[Renewal]) -> dict[str, Any]:
        now = utcnow()
        try:
            rows = await self._statements.run(
                lambda connection: protocol.renew_many(connection, batch, now=now)
            )
        except Exception:  # each heartbeat then runs alone and reports its own error
            log.warning("renewing %d heartbeats at once failed", len(batch), exc_info=True)
            return {}
        return {} if isinstance(rows, NotHere) else rows


def _one_per_lease(
    waiting: list[tuple[Renewal, asyncio.Future[Any]]],
) -> tuple[list[tuple[Renewal, asyncio.Future[Any]]], list[tuple[Renewal, asyncio.Future[Any]]]]:
    """Up to MOST heartbeats for distinct leases, and the rest (a lease heartbeating
    twice at once waits for the next statement, so each row answers one request)."""
    batch: list[tuple[Renewal, asyncio.Future[Any]]] = []
    rest: list[tuple[Renewal, asyncio.Future[Any]]] = []
    leases: set[str] = set()
    for item in waiting:
        lease = item[0].lease_id
        if len(batch) < MOST and lease not in leases:
            leases.add(lease)
            batch.append(item)
        else:
            rest.append(item)
    return batch, rest
