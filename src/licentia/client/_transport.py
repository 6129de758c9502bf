"""Talking to License Central's device endpoints over HTTP.

Bodies are compact JWS (``application/jose``). Errors come back as problem+json and
leave here as the SDK's typed exceptions (:func:`error_from_problem`); a connection
that fails for any reason is a :class:`NetworkError`. Nothing here retries: only the
auto-update retries, with backoff.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from licentia import __version__
from licentia.client._exceptions import NetworkError, ServerError, error_from_problem
from licentia.client._frozen import FrozenValue

if TYPE_CHECKING:
    import httpx

__all__ = ["Answer", "Transport"]

JOSE = "application/jose"


class Answer(FrozenValue):
    """A successful answer: 200 with a body, or 304 (``not_modified``)."""

    __slots__ = _fields = ("status", "text")
    status: int
    text: str

    def __init__(self, status: int, text: str) -> None:
        self._assign(status, text)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    def json(self) -> Any:
        """The body as JSON; raises ServerError if it is not."""
        try:
            return json.loads(self.text)
        except ValueError as error:
            raise ServerError(
                "License Central answered with something that is not JSON. "
                "Check the server address, or contact your vendor.",
                status=self.status,
            ) from error


class Transport:
    """The device endpoints of one vendor at ``server_url`` (scheme, host, optional path).

    httpx is imported and the HTTP client built on first use: importing httpx and
    setting up TLS cost tens to hundreds of milliseconds, and an application that only
    checks licenses offline should not pay for them at every start.
    """

    def __init__(
        self,
        server_url: str,
        vendor: str,
        *,
        transport: httpx.BaseTransport | None,
        timeout: float,
    ) -> None:
        self._base = f"{server_url.rstrip('/')}/api/v1/vendors/{vendor}/devices/"
        self._transport = transport
        self._timeout = timeout
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def http_transport(self) -> httpx.BaseTransport | None:
        """The httpx transport given (None: httpx's own)."""
        return self._transport

    @property
    def timeout(self) -> float:
        return self._timeout

    def url(self, endpoint: str) -> str:
        """The address of the device endpoint ``endpoint``."""
        return self._base + endpoint

    def post(self, endpoint: str, token: str, *, if_none_match: str | None = None) -> Answer:
        """POST ``token`` to ``endpoint`` (``activate``, ``sync``, ``returns``…).

        Raises NetworkError if License Central cannot be reached, and the typed error
        of its problem answer (a ServerError or a more specific class) otherwise.
        """
        import httpx

        headers = {"If-None-Match": f'"{if_none_match}"'} if if_none_match else {}
        try:
            response = self._client().post(endpoint, content=token.encode("ascii"), headers=headers)
        except httpx.HTTPError as error:
            raise NetworkError.unreachable(self.url(endpoint), error) from error
        if response.status_code in (200, 304):
            return Answer(response.status_code, response.text.strip())
        raise error_from_problem(response.status_code, _problem(response))

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _client(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    base_url=self._base,
                    transport=self._transport,
                    timeout=self._timeout,
                    headers={
                        "User-Agent": f"licentia-client/{__version__}",
                        "Content-Type": JOSE,
                    },
                )
            return self._http


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
