"""The one reading of ``Authorization: Bearer <credential>``, for FastAPI's routes and
the hot calls alike: the same header is accepted or refused on every path."""

from __future__ import annotations

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection


def bearer_credential(header: str | None) -> str | None:
    """The credential in an ``Authorization`` header value: the scheme ``Bearer`` in
    any case, then the credential after any number of spaces (surrounding whitespace
    ignored). None when there is none."""
    if not header:
        return None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    return credential if credential and scheme.lower() == "bearer" else None


class Bearer(HTTPBearer):
    """FastAPI's ``HTTPBearer`` (it documents the scheme in the OpenAPI document), with
    the header read by :func:`bearer_credential`; never raises, the route decides."""

    def __init__(self, *, scheme_name: str, description: str) -> None:
        super().__init__(auto_error=False, scheme_name=scheme_name, description=description)

    async def __call__(self, request: HTTPConnection) -> HTTPAuthorizationCredentials | None:
        credential = bearer_credential(request.headers.get("Authorization"))
        if credential is None:
            return None
        return HTTPAuthorizationCredentials(scheme="Bearer", credentials=credential)
