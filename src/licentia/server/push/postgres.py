"""Changes made on other nodes, from PostgreSQL's LISTEN/NOTIFY.

Each node keeps one connection that listens on ``changes.CHANNEL``; the transactions
that change containers send ``pg_notify`` (``push.changes``), delivered when they
commit. A node's own notifications are skipped: its commits told its hub already. A
lost connection is opened again after a growing pause; changes made meanwhile reach
the devices at their next poll or stream (each new stream starts with a sync).
"""

from __future__ import annotations

import asyncio
import logging
import random

import psycopg

from licentia.server.db.engine import conninfo
from licentia.server.push.changes import CHANNEL, NODE, decode
from licentia.server.push.hub import PushHub

log = logging.getLogger(__name__)
_FIRST_PAUSE, _LONGEST_PAUSE = 0.5, 30.0


async def listen_forever(database_url: str, hub: PushHub) -> None:
    """Relay other nodes' changes to ``hub`` until cancelled."""
    pause = _FIRST_PAUSE
    while True:
        try:
            await _listen(conninfo(database_url), hub)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("push: listening for other nodes' changes failed: %r", error)
        await asyncio.sleep(random.uniform(pause / 2, pause))  # noqa: S311 - not secrecy
        pause = min(_LONGEST_PAUSE, pause * 2)


async def _listen(info: str, hub: PushHub) -> None:
    async with await psycopg.AsyncConnection.connect(info, autocommit=True) as connection:
        await connection.execute(f"LISTEN {CHANNEL}")
        async for notification in connection.notifies():
            node, addresses = decode(notification.payload)
            if node != NODE and addresses:
                hub.publish(addresses)
