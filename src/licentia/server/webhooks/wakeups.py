"""Events written on other nodes, from PostgreSQL's LISTEN/NOTIFY.

A statement that inserts into ``webhook_events`` sends ``pg_notify`` on ``CHANNEL``
(a trigger, migration 0025), which PostgreSQL delivers to every listening connection
when its transaction commits. Each node keeps one connection that listens
(:func:`licentia.server.db.notifications.listen_forever`) and wakes its delivery
loop, so an event another node wrote leaves without waiting for the poll. While the
connection is lost, the poll finds what was written; each new connection wakes the
loop once.
"""

from __future__ import annotations

from collections.abc import Callable

from licentia.server.db.notifications import listen_forever as listen_on

CHANNEL = "licentia_webhooks"


async def listen_forever(database_url: str, waken: Callable[[], None]) -> None:
    """Call ``waken`` when another transaction has written events, until cancelled."""
    await listen_on(database_url, CHANNEL, lambda _payload: waken(), listening=waken)
