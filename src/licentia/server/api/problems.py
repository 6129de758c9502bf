"""The one place where errors become RFC 9457 problem+json answers."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.routing import compile_path

from licentia.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    LicentiaError,
    LoginThrottledError,
    MailNotSentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerBusyError,
    ValidationError,
    field_path,
)
from licentia.formats.jws import SignatureInvalidError

log = logging.getLogger("licentia.api")
MEDIA_TYPE = "application/problem+json"

STATUS: tuple[tuple[type[LicentiaError], int], ...] = (
    (ValidationError, 422),
    (LoginThrottledError, 429),
    (RateLimitedError, 429),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (ServerBusyError, 503),
    (ConfigurationError, 500),
    (MailNotSentError, 502),
)
_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
}


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem document (RFC 9457) of an answer, or of one item of a batch."""
    return {
        "type": f"urn:licentia:problem:{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_of(error: LicentiaError) -> dict[str, Any]:
    """The problem document a request failing with ``error`` alone would be answered
    with: what a batch reports for one of its items (a 5xx without its internals)."""
    status = status_of(error)
    if status >= 500 and not isinstance(error, ServerBusyError):
        log.error("server-side problem in a batch item: %s", error.message)
        return problem_body(
            status, error.code, "the server is misconfigured; the operator was told"
        )
    return problem_body(status, error.code, error.message, **error.details)


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = problem_body(status, code, detail, **extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after_seconds" in extra:
        headers = {"Retry-After": str(extra["retry_after_seconds"])}
    if status == 503:
        headers = {"Retry-After": "1"}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def status_of(error: LicentiaError) -> int:
    return next((status for kind, status in STATUS if isinstance(error, kind)), 500)


def answer_for(error: Exception, method: str, path: str) -> JSONResponse:
    """The problem answer for an error a route raised (what the handlers ``install``
    registers answer); the hot calls (:mod:`licentia.server.api.hot`) use it too."""
    if isinstance(error, LicentiaError):
        status = status_of(error)
        if status >= 500 and not isinstance(error, ServerBusyError):
            log.error("server-side problem on %s: %s", path, error.message)
            return problem(status, error.code, "the server is misconfigured; the operator was told")
        return problem(status, error.code, error.message, **error.details)
    if isinstance(error, DataError):
        # A value the database cannot hold (a NUL character in PostgreSQL text, a number
        # out of range) is the caller's input, not a server fault. Only the driver's own
        # message is logged: the statement and its parameters could carry secrets.
        log.warning("database refused a value on %s %s: %s", method, path, error.orig)
        return problem(
            422,
            "VALIDATION_FAILED",
            "a value in the request cannot be stored (for example a NUL character)",
        )
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        # Lost while committing (anything earlier was run again on a new connection):
        # whether the change was kept is unknown, so the caller should try again.
        log.warning("database connection lost on %s %s: %s", method, path, error.orig)
        return problem(
            503,
            "DATABASE_UNREACHABLE",
            "the database connection was lost; retry (a create with its Idempotency-Key)",
        )
    if isinstance(error, SignatureInvalidError):
        # A device message that is no JWS at all, wherever a route meets it first: the
        # format layer's error is not a domain error, but it is the sender's fault.
        return problem(401, error.code, str(error) or "not a valid signed message")
    log.error("unexpected error on %s %s", method, path, exc_info=error)
    return problem(500, "INTERNAL_ERROR", "an unexpected error occurred; it has been logged")


async def _raised(request: Request, error: Exception) -> JSONResponse:
    return answer_for(error, request.method, request.url.path)


_LOCATIONS = frozenset({"body", "query", "path", "header"})


def _field_of(error: Any) -> str:
    """Where a request error is, in the one convention of every ``field``
    (``lines[0].sku``); "" for the body as a whole."""
    if error.get("type") == "json_invalid":
        return ""
    location, *path = error.get("loc", ()) or ("body",)
    # The body's fields, the query's and the path's parameters are named alike: by
    # name, as the domain's own errors name them (``cursor``, ``lines[0].sku``).
    return field_path(path if location in _LOCATIONS else [location, *path])


def _not_json(request: Request, error: Any) -> bool:
    """A body FastAPI did not read as JSON because no JSON Content-Type came with it:
    validation then complains about "a valid dictionary", which helps nobody."""
    content_type = request.headers.get("content-type", "")
    return tuple(error.get("loc", ())) == ("body",) and "json" not in content_type


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error") or first.get("msg")
        return problem(400, "BAD_REQUEST", f"the body is not valid JSON: {reason}")
    if _not_json(request, first) and first.get("type") != "missing":
        return problem(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as JSON, with the header 'Content-Type: application/json'",
        )
    field = _field_of(first) or None
    detail = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    return problem(
        422,
        "VALIDATION_FAILED",
        detail,
        field=field,
        errors=[{"field": _field_of(e), "message": e.get("msg")} for e in error.errors()],
    )


async def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    if error.status_code == 413:  # FastAPI's count, or api/bodies.py's Content-Length
        limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        return problem(
            413,
            "BODY_TOO_LARGE",
            f"the request body is longer than this route takes ({limit} bytes)",
            max_bytes=limit,
        )
    code = _HTTP_CODES.get(error.status_code, f"HTTP_{error.status_code}")
    answer = problem(error.status_code, code, str(error.detail))
    answer.headers.update(error.headers or {})
    if error.status_code == 405:
        answer.headers["Allow"] = ", ".join(allowed_methods(request))
    return answer


def allowed_methods(request: Request) -> list[str]:
    """Every method the request's path answers (RFC 9110's ``Allow``). Starlette names
    those of the first route with the path only, and a path here has a route per
    method."""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(path):
            methods |= route.methods
    return sorted(methods)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http)
    for raised in (LicentiaError, DataError, SignatureInvalidError, Exception):
        app.add_exception_handler(raised, _raised)
