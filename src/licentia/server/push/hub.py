"""The open push streams of one server process, and waking them.

A stream subscribes to one address (``d:<device>`` or ``c:<container>``); a change
sets the subscription's flag, which the stream turns into one ``changed`` event: many
changes before the stream looks are one event, since the device syncs everything
anyway. :meth:`PushHub.publish` may be called from any thread (commits run on the
thread pool); the flags are set on the event loop.

Bounded: at most ``max_streams`` streams per process (each holds a connection, and
``LICENTIA_MAX_CONNECTIONS`` must keep room for ``/healthz`` and ordinary requests)
and ``per_address`` per device or container.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable

from licentia.domain.errors import ConflictError, ServerBusyError


class StreamsFullError(ServerBusyError):
    """This process holds as many push streams as it may: poll, and try again later."""

    code = "PUSH_STREAMS_FULL"


class DeviceStreamsFullError(ConflictError):
    """This device or container has as many open streams as it may."""

    code = "PUSH_STREAMS_PER_DEVICE"


class Subscription:
    """One stream's interest in one address; ``changed`` is set on every change."""

    def __init__(self, hub: PushHub, address: str) -> None:
        self.address = address
        self.changed = asyncio.Event()
        self.closed = False
        self._hub = hub

    def close(self) -> None:
        """Stop listening (idempotent); frees the stream's place."""
        if not self.closed:
            self.closed = True
            self._hub._leave(self)


class PushHub:
    """The subscriptions of one process, on the event loop that :meth:`bind` gave."""

    def __init__(self, *, max_streams: int, per_address: int) -> None:
        self.max_streams = max_streams
        self.per_address = per_address
        self._by_address: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.published = 0  # changes told to this hub (for tests and the bench)

    @property
    def open_streams(self) -> int:
        return self._count

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, address: str) -> Subscription:
        """A subscription to ``address``; on the event loop only.

        Raises StreamsFullError when the process holds ``max_streams`` streams, and
        DeviceStreamsFullError when ``address`` holds ``per_address``."""
        if self._count >= self.max_streams:
            raise StreamsFullError(
                "this server holds as many push streams as it may; poll and try again later"
            )
        if len(self._by_address[address]) >= self.per_address:
            raise DeviceStreamsFullError(
                f"at most {self.per_address} push streams per device; close one first",
                limit=self.per_address,
            )
        subscription = Subscription(self, address)
        self._by_address[address].add(subscription)
        self._count += 1
        return subscription

    def publish(self, addresses: Iterable[str]) -> None:
        """Wake the streams of ``addresses``; from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        wanted = tuple(addresses)
        try:
            loop.call_soon_threadsafe(self._wake, wanted)
        except RuntimeError:  # the loop closed meanwhile: nobody is listening
            return

    def close_all(self) -> None:
        """End every stream (shutdown): each sees ``closed`` and finishes."""
        for subscriptions in list(self._by_address.values()):
            for subscription in list(subscriptions):
                subscription.close()
                subscription.changed.set()

    def _wake(self, addresses: tuple[str, ...]) -> None:
        self.published += 1
        for address in addresses:
            for subscription in self._by_address.get(address, ()):
                subscription.changed.set()

    def _leave(self, subscription: Subscription) -> None:
        subscriptions = self._by_address.get(subscription.address)
        if subscriptions is not None and subscription in subscriptions:
            subscriptions.discard(subscription)
            self._count -= 1
            if not subscriptions:
                del self._by_address[subscription.address]
