"""Talking to License Central's cloud protocol, and verifying what it signs.

The protocol is JSON over HTTP under ``/api/v1/vendors/{vendor}/cloud/`` (the server's
``cloud_devices`` routes); a registered device authenticates with
``Authorization: Bearer lcd_…``. Every failure leaves here as a typed SDK error: no
connection is a :class:`NetworkError`, a problem+json answer goes through
:func:`error_from_problem`. Nothing here retries; the callers decide what is safe to
repeat (:mod:`licentia.client._retry`).

The short-lived tokens the server answers with (access, seat and borrow tokens) are
compact JWS signed with the vendor's Ed25519 key; :class:`VendorKeys` verifies them
with the keys the application ships (pinned), or else with the vendor's JWKS fetched
from the same server, which vouches for nothing the connection itself does not.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from licentia import __version__
from licentia.client._exceptions import (
    NetworkError,
    ServerError,
    SignatureInvalidError,
    error_from_problem,
)
from licentia.formats import jws
from licentia.formats.device import ed25519_from_jwk

if TYPE_CHECKING:
    import httpx

__all__ = ["CloudApi", "VendorKeys", "fetch_jwks"]


class CloudApi:
    """The cloud endpoints of one vendor at ``server_url``; safe to share between threads.

    httpx is imported and the HTTP client built on the first call (see
    :class:`licentia.client._transport.Transport`)."""

    def __init__(
        self,
        server_url: str,
        vendor: str,
        *,
        transport: httpx.BaseTransport | None,
        timeout: float,
    ) -> None:
        self.vendor = vendor
        root = server_url.rstrip("/")
        self._cloud = f"{root}/api/v1/vendors/{vendor}/cloud/"
        self._jwks = f"{root}/api/v1/vendors/{vendor}/jwks.json"
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Mapping[str, Any] | None = None,
        content: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send one request to ``cloud/<path>`` and return its JSON object ({} for 204).

        Raises NetworkError when License Central cannot be reached (or the answer was
        lost on the way), and the typed error of its problem answer otherwise.
        """
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self._send(
            method,
            self._cloud + path,
            headers=headers,
            json=body,
            content=content,
            timeout=timeout or self._timeout,
        )
        if response.status_code >= 300:
            raise error_from_problem(response.status_code, _json_object(response))
        if response.status_code == 204:
            return {}
        return _expect_object(response)

    @property
    def http_transport(self) -> httpx.BaseTransport | None:
        """The httpx transport given (None: httpx's own)."""
        return self._transport

    @property
    def timeout(self) -> float:
        return self._timeout

    def url(self, path: str) -> str:
        """The address of ``cloud/<path>``."""
        return self._cloud + path

    def jwks(self) -> dict[str, Any]:
        """The vendor's JWK Set (public, no authentication)."""
        response = self._send("GET", self._jwks, headers={}, timeout=self._timeout)
        if response.status_code != 200:
            raise error_from_problem(response.status_code, _json_object(response))
        return _expect_object(response)

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
                    transport=self._transport,
                    timeout=self._timeout,
                    headers={"User-Agent": f"licentia-client/{__version__}"},
                )
            return self._http

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._client().request(method, url, **kwargs)
        except httpx.HTTPError as error:
            raise NetworkError.unreachable(url, error) from error


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _expect_object(response: httpx.Response) -> dict[str, Any]:
    body = _json_object(response)
    if body is None:
        raise ServerError(
            "License Central answered with something that is not a JSON object. "
            "Check the server address, or contact your vendor.",
            status=response.status_code,
        )
    return body


def fetch_jwks(
    server_url: str,
    vendor: str,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The vendor's JWK Set as License Central at ``server_url`` publishes it.

    Keys fetched over the network are only as trustworthy as the connection: an
    application ships its vendor's keys instead (docs/sdk.md). This is for tools that
    trust the server they are pointed at, such as ``licentia device`` without
    ``--jwks``. Raises NetworkError, and ServerError (``status`` 404 for a vendor the
    server does not know).
    """
    api = CloudApi(server_url, vendor, transport=transport, timeout=timeout)
    try:
        return api.jwks()
    finally:
        api.close()


class VendorKeys:
    """The vendor's verification keys: *pinned* (shipped with the application, the only
    trust anchor for documents used offline), or *fetched* from License Central's JWKS
    on first use and again when a token names an unknown key (rotation)."""

    def __init__(
        self,
        pinned: Mapping[str, Ed25519PublicKey] | None = None,
        *,
        fetch: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        if (pinned is None) == (fetch is None):
            raise ValueError("vendor keys are either pinned or fetched")
        self._keys = dict(pinned or {})
        self._fetch = fetch
        self._lock = threading.Lock()

    @property
    def pinned(self) -> bool:
        return self._fetch is None

    def verify(self, token: str, *, typ: str) -> dict[str, Any]:
        """The claims of ``token`` once its signature verifies with a vendor key.

        Raises SignatureInvalidError, and NetworkError when fetched keys are needed and
        License Central cannot be reached.
        """
        keys = self._keys
        if self._fetch is not None and _kid(token) not in keys:
            keys = self._refresh(self._fetch)
        try:
            return jws.verify_document(token, keys, typ=typ)
        except jws.SignatureInvalidError as error:
            raise SignatureInvalidError(
                f"A {typ} document does not verify with the vendor's keys ({error}). "
                "Check the server address, or contact your vendor."
            ) from error

    def _refresh(self, fetch: Callable[[], Mapping[str, Any]]) -> dict[str, Ed25519PublicKey]:
        keys = parse_jwks(fetch())
        with self._lock:
            self._keys = keys
        return keys


def parse_jwks(document: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """``{kid: key}`` for the Ed25519 keys of a JWK Set; other keys are skipped."""
    keys: dict[str, Ed25519PublicKey] = {}
    entries = document.get("keys")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("kid"), str):
            try:
                keys[entry["kid"]] = ed25519_from_jwk(entry)
            except jws.SignatureInvalidError:
                continue
    return keys


def _kid(token: str) -> str | None:
    try:
        header = json.loads(base64.urlsafe_b64decode(_padded(token.split(".", 1)[0])))
    except (ValueError, UnicodeDecodeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _padded(segment: str) -> str:
    return segment + "=" * (-len(segment) % 4)
