"""Events written on other nodes, from PostgreSQL's LISTEN/NOTIFY.

A statement that inserts into ``webhook_events`` sends ``pg_notify`` on ``CHANNEL``
(a trigger, migration 0025), which PostgreSQL delivers to every listening connection
when its transaction commits. Each node keeps one connection that listens and wakes
its delivery loop, so an event another node wrote leaves without waiting for the poll.
A lost connection is opened again after a growing pause; the poll finds what was
written meanwhile, and each new connection wakes the loop once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import psycopg

from licentia.server.db.engine import conninfo

log = logging.getLogger(__name__)
CHANNEL = "licentia_webhooks"
_FIRST_PAUSE, _LONGEST_PAUSE = 0.5, 30.0


async def listen_forever(database_url: str, waken: Callable[[], None]) -> None:
    """Call ``waken`` when another transaction has written events, until cancelled."""
    pause = _FIRST_PAUSE
    while True:
        try:
            await _listen(conninfo(database_url), waken)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("webhooks: listening for other nodes' events failed: %r", error)
        await asyncio.sleep(random.uniform(pause / 2, pause))  # noqa: S311 - not secrecy
        pause = min(_LONGEST_PAUSE, pause * 2)


async def _listen(info: str, waken: Callable[[], None]) -> None:
    async with await psycopg.AsyncConnection.connect(info, autocommit=True) as connection:
        await connection.execute(f"LISTEN {CHANNEL}")
        waken()  # what was written while nobody listened
        async for _ in connection.notifies():
            waken()
