"""A connection that listens on a PostgreSQL channel (LISTEN/NOTIFY) for as long as the
server runs.

``pg_notify`` on a channel is delivered to every connection listening on it when the
sending transaction commits: other nodes' changes (push updates) and events
(webhook delivery) reach this node at once instead of at its next poll. A lost
connection is opened again after a growing, jittered pause; what was sent meanwhile
is for the listener's poll to find, and ``listening`` is called on each new
connection so that it can look at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import psycopg

from licentia.server.db.engine import conninfo

log = logging.getLogger(__name__)
_FIRST_PAUSE, _LONGEST_PAUSE = 0.5, 30.0


async def listen_forever(
    database_url: str,
    channel: str,
    notified: Callable[[str], None],
    listening: Callable[[], None] = lambda: None,
) -> None:
    """Call ``notified`` with each notification's payload on ``channel`` (and
    ``listening`` each time a connection starts to listen), until cancelled."""
    pause = _FIRST_PAUSE
    while True:
        try:
            info = conninfo(database_url)
            async with await psycopg.AsyncConnection.connect(info, autocommit=True) as connection:
                await connection.execute(f"LISTEN {channel}")
                listening()
                pause = _FIRST_PAUSE
                async for notification in connection.notifies():
                    notified(notification.payload)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("listening on %s failed: %r", channel, error)
        await asyncio.sleep(random.uniform(pause / 2, pause))  # noqa: S311 - not secrecy
        pause = min(_LONGEST_PAUSE, pause * 2)
