"""A lean HTTP/1.1 client for the seat and counter load phases.

As the heartbeat phase's load generator, aiohttp spent about 0.35 ms of CPU per
request on the cores the server and PostgreSQL share (measured with /proc/<pid>/stat
on the project's 2-core machine, at 600 heartbeats/s). This client keeps a fixed set
of keep-alive connections, writes each request as prepared bytes and parses answers
with httptools (llhttp, the parser uvicorn uses): about 0.17 ms in the same
measurement. It speaks just what the benchmark needs: one request at a time per
connection, answers with a Content-Length or none (204, 304).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any, cast
from urllib.parse import urlsplit

import httptools


class _Connection(asyncio.Protocol):
    """One keep-alive connection; ``exchange`` sends a request and waits for its answer."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._answer: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result((self._parser.get_status_code(), b"".join(self._body)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(ConnectionError(f"the server closed the connection: {exc}"))

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        assert self._transport is not None
        self._body = []
        self._answer = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._answer

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HttpPool:
    """``size`` connections to ``base_url``'s host, each request sent with ``headers``;
    a request waits for a free connection. ``local_address`` is the address they
    connect from (another loopback address is another client to the server)."""

    def __init__(
        self,
        base_url: str,
        size: int,
        headers: Mapping[str, str],
        local_address: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        self._local = (local_address, 0) if local_address else None
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._size = size
        common = {"Host": f"{self._host}:{self._port}", **headers}
        self._head = "".join(f"{name}: {value}\r\n" for name, value in common.items())
        # Last in, first out: under a light load the same few connections serve, and
        # the server's keep-alive timeout closes the others while they wait unused.
        self._free: asyncio.LifoQueue[_Connection] = asyncio.LifoQueue()
        self._all: list[_Connection] = []

    async def __aenter__(self) -> HttpPool:
        for _ in range(self._size):
            self._free.put_nowait(await self._connect())
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for connection in self._all:
            connection.close()

    def prepare(self, method: str, path: str, body: Any = None) -> bytes:
        """The request's bytes (``body`` sent as JSON), to send with :meth:`send`."""
        if body is None:
            return f"{method} {path} HTTP/1.1\r\n{self._head}Content-Length: 0\r\n\r\n".encode()
        data = json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\n{self._head}Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to ``request`` (from :meth:`prepare`).
        Raises ConnectionError (OSError) if the connection broke; it is replaced."""
        connection = await self._free.get()
        if connection.closed:  # closed by the server while unused: nothing was sent
            connection = await self._connect()
        try:
            answer = await connection.exchange(request)
        except BaseException:
            connection.close()
            self._free.put_nowait(await self._connect())
            raise
        self._free.put_nowait(connection)
        return answer

    async def _connect(self) -> _Connection:
        _transport, connection = await asyncio.get_running_loop().create_connection(
            _Connection, self._host, self._port, local_addr=self._local
        )
        self._all.append(connection)
        return connection
