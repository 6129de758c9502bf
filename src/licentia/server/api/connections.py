"""The HTTP connections of one server process: how many, from whom, and for how long.

uvicorn reads a request's headers and body for as long as the client takes, and takes
every connection it is offered: a few clients that open thousands of connections and
send a request a byte at a time (or never finish it) hold a file descriptor each until
the process has none left, and then nobody, ``/healthz`` included, is answered. This
protocol is uvicorn's own (httptools) with three bounds added:

- a request's headers must arrive within ``header_seconds`` of its first byte (or of
  the connection, for its first request), its body within ``body_seconds`` of the
  headers; otherwise the connection is closed;
- at most ``max_connections`` connections per process: one more is closed at once;
- at most ``max_per_address`` connections from one client address, except from the
  trusted proxies (all their clients share their address: there the proxy limits).

Between requests, uvicorn's keep-alive timeout applies as before. The bounds apply to
the socket's peer, not to ``X-Forwarded-For``: the peer is what holds the descriptor.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from licentia.server.observability.requests import PEER_TRUSTED
from licentia.server.settings import Settings

log = logging.getLogger(__name__)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class ConnectionLimits:
    header_seconds: float
    body_seconds: float
    max_connections: int
    max_per_address: int  # 0: no cap per address
    exempt: tuple[Network, ...] = ()  # the trusted proxies
    exempt_all: bool = False

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        entries = settings.trusted_proxy_list
        return cls(
            header_seconds=settings.header_timeout_seconds,
            body_seconds=settings.body_timeout_seconds,
            max_connections=settings.max_connections,
            max_per_address=settings.max_connections_per_address,
            exempt=tuple(_network(e) for e in entries if e != "*"),
            exempt_all="*" in entries,
        )

    def trusted(self, address: str | None) -> bool:
        """Whether ``address`` is a proxy the operator trusts (its ``X-Request-ID``
        names the request, :mod:`licentia.server.observability.requests`)."""
        if self.exempt_all:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.exempt)

    def capped(self, address: str) -> bool:
        """Whether connections from ``address`` count against ``max_per_address``."""
        if self.max_per_address <= 0 or self.exempt_all:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # a Unix socket: no address to count
            return False
        return not any(ip in network for network in self.exempt)


def _network(entry: str) -> Network:
    return ipaddress.ip_network(entry, strict=False)


@dataclass
class ConnectionBook:
    """The open connections of one process, per client address."""

    limits: ConnectionLimits
    per_address: Counter[str] = field(default_factory=Counter)

    def admit(self, address: str | None, open_connections: int) -> bool:
        if open_connections >= self.limits.max_connections:
            return False
        if address is None or not self.limits.capped(address):
            return True
        if self.per_address[address] >= self.limits.max_per_address:
            return False
        self.per_address[address] += 1
        return True

    def leave(self, address: str | None) -> None:
        if address is not None and self.per_address[address] > 0:
            self.per_address[address] -= 1
            if not self.per_address[address]:
                del self.per_address[address]


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the bounds of the module docstring."""

    def __init__(self, *args: Any, book: ConnectionBook, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._book = book
        self._address: str | None = None  # counted in the book
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._trusted_peer = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, tuple) else None
        if not self._book.admit(address, len(self.connections)):
            self._refused = True
            transport.abort()
            return
        self._address = address if address and self._book.limits.capped(address) else None
        self._trusted_peer = self._book.limits.trusted(address)
        super().connection_made(transport)
        self._arm(self._book.limits.header_seconds)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        self._book.leave(self._address)
        self._address = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # Before uvicorn puts the forwarded client's address in place of the peer's.
        self.scope[PEER_TRUSTED] = self._trusted_peer  # type: ignore[literal-required]
        if self._deadline is None:  # the next request on a kept-alive connection
            self._arm(self._book.limits.header_seconds)

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()
        self._arm(self._book.limits.body_seconds)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.debug("closing a connection whose request was not read in time: %s", self.client)
            self.transport.close()


def bounded_protocol(settings: Settings) -> partial[BoundedProtocol]:
    """The ``http`` protocol to give uvicorn: each worker process unpickles its own
    book, so the bounds hold per process."""
    return partial(BoundedProtocol, book=ConnectionBook(ConnectionLimits.of(settings)))
