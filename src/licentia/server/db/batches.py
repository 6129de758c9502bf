"""Requests that arrive together go to the database together: one statement for many.

The hottest calls (a seat heartbeat, a license read by id) each cost the database a
statement of its own, and the round trip, the statement's execution and (for a
write) its commit came to a large share of the machine's work for them. A
:class:`Batches` queues the requests one event loop receives while a statement is on
its way; the next statement serves all of them (up to ``most`` at once). A lone
request goes out at once, so a quiet server adds no delay; a busy one adds at most
one statement's time. Every request waits for a statement *sent after it arrived*,
so what it gets is at least as fresh as if it had gone alone.

Requests carry a key. With ``share`` two requests of the same key in one batch share
one answer (two reads of one row); without it, the second waits for the next
statement (two renewals of one lease must each be answered by their own row).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Queue(Generic[T]):
    waiting: list[tuple[Hashable, T, asyncio.Future[Any]]] = field(default_factory=list)
    sender: asyncio.Task[None] | None = None


class Batches(Generic[T, R]):
    """``send(items)`` answers a batch: a result (or None) per item, in order. If it
    raises, each request of the batch raises that error (a caller may then serve its
    request alone, which says for itself what is wrong)."""

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[list[R | None]]],
        *,
        key: Callable[[T], Hashable],
        share: bool,
        most: int = 64,
    ) -> None:
        self._send = send
        self._key = key
        self._share = share
        self._most = most
        self._queues: dict[asyncio.AbstractEventLoop, _Queue[T]] = {}

    async def ask(self, item: T) -> R | None:
        loop = asyncio.get_running_loop()
        queue = self._queues.setdefault(loop, _Queue())
        answer: asyncio.Future[R | None] = loop.create_future()
        queue.waiting.append((self._key(item), item, answer))
        if queue.sender is None or queue.sender.done():
            queue.sender = loop.create_task(self._drain(queue))
        return await answer

    async def _drain(self, queue: _Queue[T]) -> None:
        """Send statements until nobody waits; each takes what waited at its start."""
        while queue.waiting:
            batch, queue.waiting = self._take(queue.waiting)
            items = [item for item, _ in batch.values()]
            try:
                results = await self._send(items)
            except Exception as error:
                for _, answers in batch.values():
                    for answer in answers:
                        if not answer.done():
                            answer.set_exception(error)
                continue
            for (_, answers), result in zip(batch.values(), results, strict=True):
                for answer in answers:
                    if not answer.done():
                        answer.set_result(result)

    def _take(
        self, waiting: list[tuple[Hashable, T, asyncio.Future[Any]]]
    ) -> tuple[
        dict[Hashable, tuple[T, list[asyncio.Future[Any]]]],
        list[tuple[Hashable, T, asyncio.Future[Any]]],
    ]:
        """Up to ``most`` distinct keys for this statement, and the requests left."""
        batch: dict[Hashable, tuple[T, list[asyncio.Future[Any]]]] = {}
        rest: list[tuple[Hashable, T, asyncio.Future[Any]]] = []
        for key, item, answer in waiting:
            if key in batch and self._share:
                batch[key][1].append(answer)
            elif key not in batch and len(batch) < self._most:
                batch[key] = (item, [answer])
            else:
                rest.append((key, item, answer))
        return batch, rest
