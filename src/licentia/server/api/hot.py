"""The hot calls: answered before FastAPI's routing and dependency injection.

A seat heartbeat costs the database two short statements, yet profiling a server
under load found most of its CPU in the HTTP framework (docs/benchmarks.md):
middleware, trying the routes one after the other, solving dependencies. The calls a
fleet of devices makes all day long are therefore matched here first, by splitting
the path, and answered by their FastAPI route's own function.

A route says it is hot with :func:`hot`; :meth:`HotCalls.of_routes` builds the table
from the app's routes, so method and path are declared once, by the route. A hot
call has two steps:

- **parse** builds the route function's arguments from the request: the path's
  parameters, its query parameters, the JSON body as the parameter's model
  (:func:`body_of`), and each
  dependency's value by the parse its dependency was given (:func:`parsed_by`). It
  may hand the request on to FastAPI (:class:`PassOn`: no bearer credential, a body
  that is not JSON or does not validate, a body larger than :data:`MAX_BODY`), and
  does so before doing anything, so that FastAPI's answer (a 401, a 422 naming the
  field) is the one a client gets, from one place. Bodies are parsed first.
- **answer** is the route function called with those arguments. It cannot hand
  anything on: whatever it raises becomes the same problem+json as on any route
  (:func:`licentia.server.api.problems.answer_for`), so nothing runs twice.

The FastAPI routes stay what the OpenAPI document describes, and what answers
whenever a hot call hands a request on.
"""

from __future__ import annotations

import inspect
import time
import typing
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI, params
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Message, Receive, Scope, Send

from licentia.domain.errors import LicentiaError
from licentia.server.api.bearer import bearer_credential
from licentia.server.api.bodies import JSON_BODY, BodyLimits
from licentia.server.api.headers import SecuredSend, TransportSecurity
from licentia.server.api.hot_requests import (
    MAX_BODY,
    PARSE,
    F,
    HotRequest,
    Parse,
    PassOn,
    body_of,
    parsed_by,
)
from licentia.server.api.nul import nul_in_json, nul_in_target
from licentia.server.api.paths import PathTable, marked_routes
from licentia.server.api.paths import parameter as path_parameter
from licentia.server.api.problems import answer_for
from licentia.server.observability.requests import ROUTE, RequestCounts, request_id_of
from licentia.server.rate_limits.lines import LINE

if TYPE_CHECKING:
    from licentia.server.api.limiting import RequestLimits

__all__ = ["MAX_BODY", "HotCall", "HotCalls", "HotRequest", "LicentiaApp", "PassOn"]
__all__ += ["body_of", "hot", "parsed_by"]

_HOT = "__licentia_hot__"


def hot(endpoint: F) -> F:
    """Mark a route to be answered before FastAPI's routing. Its function must return
    a Response; each of its parameters must be a path parameter, a JSON body model or
    a dependency marked with :func:`parsed_by`."""
    setattr(endpoint, _HOT, True)
    return endpoint


Answer = Callable[..., Awaitable[Response]]


@dataclass(frozen=True)
class HotCall:
    """``method`` and ``path`` (a route's path: ``{name}`` for a parameter): ``parse``
    turns the request into keyword arguments, ``answer`` answers with them."""

    method: str
    path: str
    parse: Callable[[HotRequest], Awaitable[dict[str, Any]]]
    answer: Answer
    json_body: bool = True  # else the body is passed as it comes (e.g. a compact JWS)


class HotCalls:
    """The table of hot calls, matched by method, segment count and literal segments."""

    def __init__(self, calls: Iterable[HotCall]) -> None:
        self.calls = tuple(calls)
        self._table = PathTable((call.method, call.path, call) for call in self.calls)

    @classmethod
    def of_routes(cls, routes: Sequence[BaseRoute]) -> HotCalls:
        """The table of the routes marked :func:`hot` (each with its full path, its
        routers' prefixes included)."""
        return cls(
            _hot_call(method, path, endpoint)
            for method, path, endpoint in marked_routes(routes, lambda e: getattr(e, _HOT, False))
        )

    def match(self, method: str, path: str) -> tuple[HotCall, dict[str, str]] | None:
        return self._table.match(method, path)


def _hot_call(method: str, path: str, endpoint: Answer) -> HotCall:
    """The hot call of the route at ``path``: its parse, from its function's parameters."""
    function = inspect.unwrap(endpoint)
    hints = typing.get_type_hints(function)
    if not issubclass(hints.get("return", object), Response):
        raise TypeError(f"a hot route answers a Response: {path}")
    path_names = {name for part in path.split("/") if (name := path_parameter(part))}
    bodies: list[tuple[str, Parse]] = []
    others: list[tuple[str, Parse]] = []
    for name, parameter in inspect.signature(function).parameters.items():
        kind = hints.get(name)
        if name in path_names:
            others.append((name, _path_value(name)))
        elif isinstance(parameter.default, params.Query):
            bodies.append((name, _query_parse(name, kind, parameter.default)))
        elif isinstance(parameter.default, params.Depends):
            others.append((name, _dependency_parse(path, parameter.default.dependency)))
        elif inspect.isclass(kind) and issubclass(kind, BaseModel):
            bodies.append((name, _body_parse(kind)))
        else:
            raise TypeError(f"a hot route cannot parse {name!r}: {path}")
    steps = bodies + others  # nothing to do before the body is known to validate
    return HotCall(method, path, _parse_all(steps), endpoint, json_body=bool(bodies))


def _path_value(name: str) -> Parse:
    return lambda request: request.params[name]


def _query_parse(name: str, kind: Any, query: params.Query) -> Parse:
    """The query parameter ``name`` as ``kind``, within the bounds its ``Query`` sets
    (``max_length``, ``le``…); PassOn (FastAPI's 422) if it is missing and required,
    or does not validate."""
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[kind, *query.metadata] if query.metadata else kind
    )

    def parse(request: HotRequest) -> Any:
        values = parse_qs(request.query.decode("latin-1")).get(name)
        if not values:
            if query.is_required():
                raise PassOn
            return query.get_default(call_default_factory=True)
        try:
            return adapter.validate_python(values[-1])
        except ValidationError:
            raise PassOn from None

    return parse


def _body_parse(model: type[BaseModel]) -> Parse:
    return lambda request: body_of(model, request)


def _dependency_parse(path: str, dependency: Any) -> Parse:
    parse: Parse | None = getattr(dependency, PARSE, None)
    if parse is None:
        raise TypeError(f"a hot route's dependency needs parsed_by(): {path}")
    return parse


def _parse_all(steps: list[tuple[str, Parse]]) -> Callable[[HotRequest], Awaitable[dict[str, Any]]]:
    async def parse(request: HotRequest) -> dict[str, Any]:
        arguments = {}
        for name, step in steps:
            value = step(request)
            arguments[name] = await value if inspect.isawaitable(value) else value
        return arguments

    return parse


class LicentiaApp(FastAPI):
    """FastAPI, with the rate limits (``request_limits``, None when off) counted first,
    then a body longer than its route takes (``body_limits``) refused, a request of a
    lined family served in its line (``RequestLimits.serve_in_line``), and the hot
    calls (``hot_calls``) answered before its routing. Every answer, whichever of these
    gave it, carries the request's id and is counted (``request_counts``)."""

    hot_calls: HotCalls = HotCalls(())
    transport_security: TransportSecurity = TransportSecurity()
    body_limits: BodyLimits = BodyLimits(JSON_BODY, ())
    request_limits: RequestLimits | None = None
    request_counts: RequestCounts | None = RequestCounts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request_id = request_id_of(scope)
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        answer = SecuredSend(scope, send, self.transport_security, request_id)
        started = time.perf_counter()
        try:
            if self.request_limits is not None:
                scope["app"] = self  # as Starlette would set it: a refusal page reads it
                refused = await self.request_limits.refusal(scope)
                if refused is not None:
                    await refused(scope, receive, answer)
                    return
            limit = self.body_limits.refusal(scope)
            if limit is not None:
                await self._refuse_body(scope, receive, answer, limit)
            elif LINE in scope and self.request_limits is not None:
                most = self.body_limits.limit_for(scope["method"], scope["path"])
                await self.request_limits.serve_in_line(scope, receive, answer, self._route, most)
            else:
                await self._route(scope, receive, answer)
        except Exception:
            # Starlette's error middleware answers an unexpected error with the
            # problems handler's 500 (which logs it), then raises it again for the
            # server, which would close a keep-alive connection the client still
            # pools. Raised on only when nothing was answered.
            if not answer.started:
                raise
        finally:
            if self.request_counts is not None:
                elapsed = time.perf_counter() - started
                self.request_counts.count(scope, answer.status or 500, elapsed)
            structlog.contextvars.reset_contextvars(**bound)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The hot call's answer, or FastAPI's; a request with a NUL in its path or
        query refused first (:mod:`licentia.server.api.nul`)."""
        api = scope["path"].startswith("/api/")
        refused = nul_in_target(scope)
        if refused is not None:
            await self._refuse(scope, receive, send, refused)
            return
        found = self.hot_calls.match(scope["method"], scope["path"])
        if found is not None:
            await self._answer_hot(scope, receive, send, *found)
        elif api and scope["method"] in _WITH_BODY:
            await self._answer_with_body(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _answer_with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        """FastAPI's answer to an API request with a body, once its JSON has been seen
        to hold no NUL (a body beyond its route's limit is handed on unread: the route
        refuses it)."""
        headers = _headers(scope)
        if not _json_or_none(headers):
            await super().__call__(scope, receive, send)
            return
        most = self.body_limits.limit_for(scope["method"], scope["path"])
        body = await _read_body(receive, headers, most)
        if body.disconnected:
            return  # nobody to answer
        refused = nul_in_json(body.data) if body.complete else None
        if refused is not None:
            await answer_for(refused, scope["method"], scope["path"])(scope, receive, send)
            return
        await super().__call__(scope, _replay(body, receive), send)

    async def _refuse_body(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """413, by the handler that answers FastAPI's own refusals: problem+json for
        the API, an error page for a page."""
        scope[MAX_BODY_SIZE_SCOPE_KEY] = limit
        await self._refuse(scope, receive, send, HTTPException(413))

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: HTTPException | LicentiaError
    ) -> None:
        """Answer ``error`` before any routing, by the handler a route's would have had:
        problem+json for the API, an error page for a page."""
        scope.setdefault("app", self)
        kind = HTTPException if isinstance(error, HTTPException) else LicentiaError
        response = self.exception_handlers[kind](Request(scope, receive), error)
        if inspect.isawaitable(response):  # the handlers here are all asynchronous
            response = await response
        await response(scope, receive, send)

    async def _answer_hot(
        self, scope: Scope, receive: Receive, send: Send, call: HotCall, params: dict[str, str]
    ) -> None:
        scope[ROUTE] = call.path
        headers = _headers(scope)
        body = await _read_body(receive, headers)
        if body.disconnected:
            return  # nobody to answer
        if not body.complete or (call.json_body and not _json_or_none(headers)):
            await super().__call__(scope, _replay(body, receive), send)
            return
        refused = nul_in_json(body.data) if call.json_body else None
        if refused is not None:
            await answer_for(refused, scope["method"], scope["path"])(scope, receive, send)
            return
        client = scope.get("client")
        request = HotRequest(
            services=self.state.services,
            params=params,
            query=scope.get("query_string", b""),
            token=_bearer(headers),
            client_host=client[0] if client else None,
            body=body.data,
            headers=headers,
        )
        try:
            arguments = await call.parse(request)
        except PassOn:
            await super().__call__(scope, _replay(body, receive), send)
            return
        except Exception as error:  # the same answer as any route's, from problems
            await answer_for(error, scope["method"], scope["path"])(scope, receive, send)
            return
        response: Response
        try:
            response = await call.answer(**arguments)
        except Exception as error:  # never handed on: it may have done its work
            response = answer_for(error, scope["method"], scope["path"])
        await response(scope, receive, send)


HEADERS = (b"authorization", b"content-type", b"content-length", b"if-none-match")
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The headers hot calls read (the last of a repeated one)."""
    return {name: value for name, value in scope["headers"] if name in HEADERS}


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    return bearer_credential(headers.get(b"authorization", b"").decode("latin-1"))


def _json_or_none(headers: dict[bytes, bytes]) -> bool:
    """FastAPI reads a body as JSON when it says so or says nothing."""
    kind = headers.get(b"content-type")
    return kind is None or kind.split(b";")[0].strip().lower() == b"application/json"


@dataclass(frozen=True)
class _Body:
    """What :func:`_read_body` read: all of it (``complete``) or its first chunks."""

    data: bytes
    complete: bool
    disconnected: bool = False


async def _read_body(receive: Receive, headers: dict[bytes, bytes], most: int = MAX_BODY) -> _Body:
    """The whole body, or its first chunks once it is larger than ``most`` bytes
    (FastAPI then answers, given those chunks again and then the rest)."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > most:
        return _Body(b"", complete=False)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return _Body(b"", complete=False, disconnected=True)
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return _Body(b"".join(chunks), complete=True)
        if size > most:
            return _Body(b"".join(chunks), complete=False)


def _replay(body: _Body, receive: Receive) -> Receive:
    """A ``receive`` that first gives what was read, then what the client sends."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        message: dict[str, Any] = {
            "type": "http.request",
            "body": body.data,
            "more_body": not body.complete,
        }
        return message

    return replayed
