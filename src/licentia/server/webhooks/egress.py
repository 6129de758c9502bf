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
from collections.abc import Callable, Iterable

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


class CheckedTransport(httpx.HTTPTransport):
    """httpx's own transport, with connections opened by ``_CheckedBackend``."""

    def __init__(self, policy: TargetPolicy, resolver: Resolver = resolve) -> None:
        super().__init__(trust_env=False)
        self.policy = policy
        # httpx takes no network backend of its own: its pool is replaced by one built
        # the same way (TLS context, HTTP/1.1) around the checked backend.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_CheckedBackend(policy, resolver),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        reason = self.policy.scheme_refusal(request.url.scheme)
        if reason is not None:
            raise httpx.ConnectError(f"{request.url.host} refused: {reason}", request=request)
        return super().handle_request(request)


def delivery_client(
    policy: TargetPolicy, *, timeout: float, resolver: Resolver = resolve
) -> httpx.Client:
    """The client a ``Deliverer`` sends with."""
    return httpx.Client(
        transport=CheckedTransport(policy, resolver),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
