"""Changes made on other nodes, from PostgreSQL's LISTEN/NOTIFY.

Each node keeps one connection that listens on ``changes.CHANNEL``; the transactions
that change containers send ``pg_notify`` (``push.changes``), delivered when they
commit. A node's own notifications are skipped: its commits told its hub already. A
lost connection is opened again after a growing pause
(:func:`licentia.server.db.notifications.listen_forever`); changes made meanwhile
reach the devices at their next poll or stream (each new stream starts with a sync).
"""

from __future__ import annotations

from licentia.server.db.notifications import listen_forever as listen_on
from licentia.server.push.changes import CHANNEL, NODE, decode
from licentia.server.push.hub import PushHub


async def listen_forever(database_url: str, hub: PushHub) -> None:
    """Relay other nodes' changes to ``hub`` until cancelled."""

    def relay(payload: str) -> None:
        node, addresses = decode(payload)
        if node != NODE and addresses:
            hub.publish(addresses)

    await listen_on(database_url, CHANNEL, relay)
