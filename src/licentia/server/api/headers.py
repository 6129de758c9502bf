"""Headers every answer carries, whichever path (a route, a hot call, an error) made it.

- ``X-Content-Type-Options: nosniff`` on every answer: a browser must not guess that a
  JSON or JOSE body is HTML or script.
- ``Cache-Control: no-store`` on every answer under the API, unless it set its own:
  API keys, session tokens, ticket codes, device credentials and seat tokens are
  answered there, and no answer of the API is meant for a shared cache. The vendors'
  public key sets (JWKS) are the exception: public, and fetched by every verifier.
- ``Strict-Transport-Security`` on every answer (API and web fronts alike) when the
  visitor came over https: directly, through a proxy the server trusts (its
  ``X-Forwarded-Proto``, which uvicorn puts in the scope's scheme), or whenever the
  operator's public address is https. Browsers then never try plain http again.
- ``X-Request-ID``: the id the request's log lines carry
  (:mod:`licentia.server.observability.requests`).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Scope, Send

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_CACHE_CONTROL = b"cache-control"
_NO_STORE = (_CACHE_CONTROL, b"no-store")
_PUBLIC_SUFFIXES = ("/jwks.json",)
_REQUEST_ID = b"x-request-id"


@dataclass(frozen=True)
class TransportSecurity:
    """When and how to send ``Strict-Transport-Security``: ``max_age`` 0 never."""

    max_age: int = 0
    public_https: bool = False  # the operator's public address is https

    def header(self, scope: Scope) -> tuple[bytes, bytes] | None:
        if self.max_age <= 0 or not (self.public_https or scope.get("scheme") == "https"):
            return None
        return (b"strict-transport-security", b"max-age=%d" % self.max_age)


class SecuredSend:
    """The ``send`` of one HTTP exchange: adds the headers above to the start of the
    answer, and remembers whether the answer has started, with which status."""

    __slots__ = ("_extra", "_private", "_send", "status")

    def __init__(
        self,
        scope: Scope,
        send: Send,
        transport: TransportSecurity = TransportSecurity(),
        request_id: str | None = None,
    ) -> None:
        path = scope["path"]
        self._private = path.startswith("/api/") and not path.endswith(_PUBLIC_SUFFIXES)
        extra = [_NOSNIFF]
        strict = transport.header(scope)
        if strict:
            extra.append(strict)
        if request_id is not None:
            extra.append((_REQUEST_ID, request_id.encode("ascii")))
        self._extra = tuple(extra)
        self._send = send
        self.status: int | None = None

    @property
    def started(self) -> bool:
        return self.status is not None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            # Starlette's header names are lower case already; none of this app's
            # answers sets nosniff itself, a few set their own Cache-Control.
            headers = [*message.get("headers", ()), *self._extra]
            if self._private and not any(name == _CACHE_CONTROL for name, _ in headers):
                headers.append(_NO_STORE)
            message = {**message, "headers": headers}
        await self._send(message)
