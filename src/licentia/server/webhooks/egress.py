"""The HTTP client that delivers webhooks, and only to receivers the rules allow.

A receiver's name is resolved once per connection; every address it resolves to must
pass ``TargetPolicy.refusal`` and the socket is opened to one of those very addresses.
Letting the HTTP library resolve the name again would open the door to DNS rebinding:
a name that answers with a public address for the check and a private one for the
connection. The URL is unchanged otherwise: the ``Host`` header, TLS's server name and
the certificate check all use the receiver's name.

Redirects are not followed (a 3xx is a failed attempt, logged like any other), proxies
from the environment are not used, and plain ``http`` fails unless allowed.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpcore
import httpx

from licentia.domain.webhook_targets import TargetPolicy

Resolver = Callable[[str, int], list[str]]


class TargetRefusedError(httpcore.ConnectError):
    """The receiver's address or scheme is not allowed; nothing was sent."""


def resolve(host: str, port: int) -> list[str]:
    """The addresses of ``host``, in the resolver's order, each once."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class _CheckedBackend(httpcore.SyncBackend):
    def __init__(self, policy: TargetPolicy, resolver: Resolver) -> None:
        self.policy, self.resolver = policy, resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self.resolver(host, port)
        except OSError as error:
            raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from error
        for address in addresses:
            reason = self.policy.refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise TargetRefusedError(f"{host} refused: {reason}")
        failure: httpcore.ConnectError = httpcore.ConnectError(f"{host} has no address")
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                failure = error
        raise failure


@dataclass(frozen=True)
class Answer:
    """A receiver's answer: its status and the start of its body."""

    status_code: int
    text: str


class SendError(Exception):
    """The request failed before an answer came: ``kind`` names the failure as httpcore
    does (``ConnectError``, ``ReadTimeout``…; a refused receiver is a ``ConnectError``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class DeliveryClient:
    """POSTs webhooks over kept-alive connections opened by ``_CheckedBackend``.

    It speaks to httpcore's connection pools directly: httpx's request and response
    models around them cost as much CPU as the HTTP exchange itself when the receiver
    is fast. Each sending thread has a pool of its own, of at most
    ``connections_per_thread`` connections (to all receivers together; an idle one to
    another receiver is closed to make room). A pool shared by the senders serialised
    them on its lock, which it holds while it checks every connection it keeps, and
    cost more than the sending once there were 16 of them (docs/benchmarks.md). Only
    the first ``read_limit`` bytes of an answer are read (the connection of a longer
    one is closed instead of kept); a connection idle for ``keepalive_expiry`` seconds
    is closed."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        timeout: float,
        resolver: Resolver = resolve,
        connections_per_thread: int = 8,
        keepalive_expiry: float = 5.0,
        read_limit: int = 64 * 1024,
    ) -> None:
        self.policy = policy
        self.read_limit = read_limit
        self._timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        self._urls: dict[str, httpcore.URL] = {}
        self._ssl = httpx.create_ssl_context(trust_env=False)  # one for every pool
        self._backend = _CheckedBackend(policy, resolver)
        self._per_thread = connections_per_thread
        self._keepalive_expiry = keepalive_expiry
        self._local = threading.local()
        self._pools: list[httpcore.ConnectionPool] = []  # every thread's, to close them
        self._pools_lock = threading.Lock()

    def _pool(self) -> httpcore.ConnectionPool:
        """The calling thread's pool, made at its first request."""
        pool: httpcore.ConnectionPool | None = getattr(self._local, "pool", None)
        if pool is None:
            pool = httpcore.ConnectionPool(
                ssl_context=self._ssl,
                max_connections=self._per_thread,
                max_keepalive_connections=self._per_thread,
                keepalive_expiry=self._keepalive_expiry,
                network_backend=self._backend,
            )
            with self._pools_lock:
                self._pools.append(pool)
            self._local.pool = pool
        return pool

    def post(self, url: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> Answer:
        """Raises SendError if no answer came (refused, unreachable, timed out…)."""
        try:
            target = self._url(url)
            reason = self.policy.scheme_refusal(target.scheme.decode())
            if reason is not None:
                raise httpcore.ConnectError(f"{target.host.decode()} refused: {reason}")
            with self._pool().stream(
                "POST",
                target,
                headers=headers,
                content=body,
                extensions={"timeout": self._timeouts},
            ) as response:
                return Answer(response.status, self._read(response))
        except (*_HTTPCORE_ERRORS, httpx.InvalidURL) as error:
            raise SendError(_kind(error), str(error)) from error

    def _url(self, url: str) -> httpcore.URL:
        """``url`` parsed as httpx does (an international name in its ASCII form)."""
        parsed = self._urls.get(url)
        if parsed is None:
            raw = httpx.URL(url)
            parsed = httpcore.URL(
                scheme=raw.raw_scheme, host=raw.raw_host, port=raw.port, target=raw.raw_path
            )
            if len(self._urls) < _CACHED_URLS:
                self._urls[url] = parsed
        return parsed

    def _read(self, response: httpcore.Response) -> str:
        chunks, size = [], 0
        for chunk in response.iter_stream():
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.read_limit:
                break
        return b"".join(chunks)[: self.read_limit].decode("utf-8", "replace")

    def close(self) -> None:
        """Close every thread's connections (a thread that sends again opens new ones)."""
        with self._pools_lock:
            pools, self._pools = self._pools, []
            self._local = threading.local()
        for pool in pools:
            pool.close()

    def __enter__(self) -> DeliveryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


_CACHED_URLS = 10_000
_HTTPCORE_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
)


def _kind(error: Exception) -> str:
    """The name of httpcore's (or httpx's) class of ``error``."""
    for cls in type(error).__mro__:
        if cls.__module__.startswith(("httpcore", "httpx")):
            return cls.__name__
    return type(error).__name__


def delivery_client(
    policy: TargetPolicy, *, timeout: float, resolver: Resolver = resolve
) -> DeliveryClient:
    """The client a ``Deliverer`` sends with."""
    return DeliveryClient(policy, timeout=timeout, resolver=resolver)
