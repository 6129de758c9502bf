"""Headers every answer carries, whichever path (a route, a hot call, an error) made it.

- ``X-Content-Type-Options: nosniff`` on every answer: a browser must not guess that a
  JSON or JOSE body is HTML or script.
- ``Cache-Control: no-store`` on every answer under the API, unless it set its own:
  API keys, session tokens, ticket codes, device credentials and seat tokens are
  answered there, and no answer of the API is meant for a shared cache. The vendors'
  public key sets (JWKS) are the exception: public, and fetched by every verifier.
"""

from __future__ import annotations

from starlette.types import Message, Scope, Send

_NOSNIFF = (b"x-content-type-options", b"nosniff")
_CACHE_CONTROL = b"cache-control"
_NO_STORE = (_CACHE_CONTROL, b"no-store")
_PUBLIC_SUFFIXES = ("/jwks.json",)


class SecuredSend:
    """The ``send`` of one HTTP exchange: adds the headers above to the start of the
    answer, and remembers whether the answer has started."""

    __slots__ = ("_private", "_send", "started")

    def __init__(self, scope: Scope, send: Send) -> None:
        path = scope["path"]
        self._private = path.startswith("/api/") and not path.endswith(_PUBLIC_SUFFIXES)
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            # Starlette's header names are lower case already; none of this app's
            # answers sets nosniff itself, a few set their own Cache-Control.
            headers = [*message.get("headers", ()), _NOSNIFF]
            if self._private and not any(name == _CACHE_CONTROL for name, _ in headers):
                headers.append(_NO_STORE)
            message = {**message, "headers": headers}
        await self._send(message)
