"""The hot calls: answered before FastAPI's routing and dependency injection.

A seat heartbeat costs the database two short statements, yet profiling a server
under load (py-spy ``--gil``) found about 70 % of its CPU in the HTTP framework:
middleware, trying the routes one after the other, solving dependencies. The calls a
fleet of devices makes all day long are therefore matched here first, by splitting
the path, and answered by the very functions their FastAPI routes call, with the
same request and answer models. Their FastAPI routes stay: they are what the OpenAPI
document describes, and what answers whenever a hot call cannot.

A hot call hands a request on to FastAPI, body and all, when it is not the plain
case: no bearer credential, a body that is not JSON or does not validate, a body
larger than :data:`MAX_BODY`. It does so before doing anything, so that FastAPI's
answer (a 401, a 422 naming the field) is the one a client gets, from one place. An
error raised while answering becomes the same problem+json as on any route
(:func:`licentia.server.api.problems.answer_for`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI
from pydantic import BaseModel, ValidationError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from licentia.server.api.context import Services
from licentia.server.api.problems import answer_for

MAX_BODY = 64 * 1024


class PassOn(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a hot call that leaves the request to its FastAPI route. Only before
    it has done anything: the route then does it all."""


@dataclass(frozen=True)
class HotRequest:
    """What a hot call gets: the path's parameters, the bearer credential, the body."""

    services: Services
    params: tuple[str, ...]
    token: str | None
    client_host: str | None
    body: bytes
    headers: dict[bytes, bytes]  # those :data:`HEADERS` names, lower case


M = TypeVar("M", bound=BaseModel)


def body_of(model: type[M], request: HotRequest) -> M:
    """The JSON body as ``model``; PassOn if it does not validate (FastAPI's route
    answers the 422 that names the field)."""
    try:
        return model.model_validate_json(request.body)
    except ValidationError:
        raise PassOn from None


Answer = Callable[[HotRequest], Awaitable[Response]]


@dataclass(frozen=True)
class HotCall:
    """``method`` and ``path`` (a route's path: ``{name}`` for a parameter) answered by
    ``answer``, which raises :class:`PassOn` to leave the request to FastAPI (see
    :func:`body_of`). The parameters reach ``answer`` in the path's order."""

    method: str
    path: str
    answer: Answer
    json_body: bool = True  # else the body is passed as it comes (e.g. a compact JWS)

    def under(self, prefix: str) -> HotCall:
        return HotCall(self.method, prefix + self.path, self.answer, self.json_body)

    @property
    def segments(self) -> tuple[str | None, ...]:
        """The path's segments, None for a parameter."""
        return tuple(
            None if part.startswith("{") and part.endswith("}") else part
            for part in self.path.split("/")
        )


class HotCalls:
    """The table of hot calls, matched by method, segment count and literal segments."""

    def __init__(self, calls: Sequence[HotCall]) -> None:
        self._calls: dict[tuple[str, int], list[tuple[tuple[str | None, ...], HotCall]]] = {}
        for call in calls:
            segments = call.segments
            self._calls.setdefault((call.method, len(segments)), []).append((segments, call))

    def match(self, method: str, path: str) -> tuple[HotCall, tuple[str, ...]] | None:
        parts = path.split("/")
        for segments, call in self._calls.get((method, len(parts)), ()):
            params = []
            for pattern, part in zip(segments, parts, strict=True):
                if pattern is None:
                    if not part:
                        break
                    params.append(part)
                elif pattern != part:
                    break
            else:
                return call, tuple(params)
        return None


class LicentiaApp(FastAPI):
    """FastAPI, with the hot calls (``hot_calls``) answered before its routing."""

    hot_calls: HotCalls = HotCalls(())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.hot_calls.match(scope["method"], scope["path"])
            if found is not None:
                await self._answer_hot(scope, receive, send, *found)
                return
        await super().__call__(scope, receive, send)

    async def _answer_hot(
        self, scope: Scope, receive: Receive, send: Send, call: HotCall, params: tuple[str, ...]
    ) -> None:
        headers = _headers(scope)
        body = await _read_body(receive, headers)
        if body.disconnected:
            return  # nobody to answer
        if not body.complete or (call.json_body and not _json_or_none(headers)):
            await super().__call__(scope, _replay(body, receive), send)
            return
        client = scope.get("client")
        request = HotRequest(
            services=self.state.services,
            params=params,
            token=_bearer(headers),
            client_host=client[0] if client else None,
            body=body.data,
            headers=headers,
        )
        try:
            response = await call.answer(request)
        except PassOn:
            await super().__call__(scope, _replay(body, receive), send)
            return
        except Exception as error:  # the same answer as any route's, from problems
            response = answer_for(error, scope["method"], scope["path"])
        await response(scope, receive, send)


HEADERS = (b"authorization", b"content-type", b"content-length", b"if-none-match")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The headers hot calls read (the last of a repeated one)."""
    return {name: value for name, value in scope["headers"] if name in HEADERS}


def _bearer(headers: dict[bytes, bytes]) -> str | None:
    scheme, _, credential = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not credential:
        return None
    return credential


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


async def _read_body(receive: Receive, headers: dict[bytes, bytes]) -> _Body:
    """The whole body, or its first chunks once it is larger than MAX_BODY (FastAPI then
    answers, given those chunks again and then the rest)."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
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
        if size > MAX_BODY:
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
