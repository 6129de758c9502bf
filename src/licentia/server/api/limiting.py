"""Rate limits in front of everything (docs/security.md, "Abuse limits").

A request is counted as it arrives, before the hot calls and FastAPI's routing, so a
refused request costs one count and nothing more: no body read, no credential
checked, no database touched. Its families are its front's (``api`` under ``/api/``,
``pages`` for the portal and the console) and, when its route declared one with
:func:`licentia.server.rate_limits.families.limited`, that route's. It is counted per
client address (the peer; ``licentia serve`` puts a trusted proxy's
``X-Forwarded-For`` there, see ``LICENTIA_TRUSTED_PROXIES``) and per credential: the
bearer credential on the API, read by the one parser every route uses, and the
session cookie on the pages. Other paths (``/healthz``, ``/readyz``, static files, the
API's documentation) are not counted.

A client refused again before its ``Retry-After`` has passed gets its refusal late
(:mod:`licentia.server.rate_limits.tarpit`), so that it cannot ask again at once.

A request of a guessing family (:mod:`licentia.server.rate_limits.lines`: logins,
ticket codes, container credentials, e-mailed links) that was not refused is served
only once its whole body has arrived and it has a place in its family's line (after
a moment's wait for one, perhaps), and is refused (503 ``FAMILY_BUSY``) without one.
It takes its place only after its body has arrived, so a client that sends its body
slowly holds no place meanwhile. A guess that fails (answered with a client error)
gives its place back, and its answer is held back like a refusal when its address
was refused or failed a moment before: 100 guessers starting together used to get
their allowed guesses answered as fast as the server could, and the event loop
answered nothing else for half a second.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from licentia.domain.errors import RateLimitedError, ServerBusyError
from licentia.server.api.bearer import bearer_credential
from licentia.server.api.paths import PathTable, marked_routes
from licentia.server.api.problems import answer_for
from licentia.server.rate_limits.families import Family, family_of
from licentia.server.rate_limits.limiter import Limiter
from licentia.server.rate_limits.lines import LINE, LINED, Lines
from licentia.server.rate_limits.tarpit import Tarpit
from licentia.server.web.app import is_page, refusal_page
from licentia.server.web.sessions import SESSION_COOKIE


class RequestLimits:
    """The limiter, the table of routes that declared a family of their own, the
    tarpit that holds repeated refusals back, and the lines (None: no line)."""

    def __init__(
        self,
        limiter: Limiter,
        families: PathTable[Family],
        tarpit: Tarpit,
        lines: Lines | None = None,
    ) -> None:
        self.limiter = limiter
        self.families = families
        self.tarpit = tarpit
        self.lines = lines

    @classmethod
    def of_routes(
        cls,
        limiter: Limiter,
        routes: Sequence[BaseRoute],
        tarpit: Tarpit,
        lines: Lines | None = None,
    ) -> RequestLimits:
        declared = (
            (method, path, family)
            for method, path, endpoint in marked_routes(routes, lambda e: bool(family_of(e)))
            if (family := family_of(endpoint)) is not None
        )
        return cls(limiter, PathTable(declared), tarpit, lines)

    async def refusal(self, scope: Scope) -> Response | None:
        """The answer refusing this request when it is over a limit (held back by the
        tarpit), else None: it has been counted, and ``scope[LINE]`` names its family
        when that family has a line (:meth:`serve_in_line`)."""
        path: str = scope["path"]
        if path.startswith("/api/"):
            front = Family.API
        elif is_page(path):
            front = Family.PAGES
        else:
            return None
        found = self.families.match(scope["method"], path)
        families = (found[0], front) if found is not None else (front,)
        address = _address(scope)
        error = await self.limiter.refusal(families, address, _credential(scope, front))
        if error is None:
            if found is not None and found[0] in LINED:
                scope[LINE] = found[0]
            return None
        await self.tarpit.hold(address, error.retry_after_seconds)
        return _refusal(scope, error)

    async def serve_in_line(
        self, scope: Scope, receive: Receive, send: Send, app: ASGIApp, max_body: int
    ) -> None:
        """Serve a request of the guessing family ``scope[LINE]`` with ``app`` once its
        whole body (at most ``max_body`` bytes, its route's limit) has arrived and it
        has a place in its family's line; answer 503 ``FAMILY_BUSY`` when no place
        comes (:meth:`Lines.enter`). A longer body is handed to ``app`` without a place:
        its route refuses it (413) before any work. The tarpit holds back a busy refusal, and a
        failed guess (any client error: a wrong password, an unknown ticket code), of
        an address that was refused or failed a moment before."""
        family: Family = scope[LINE]
        arrived = await _body_messages(receive, max_body)
        if arrived is None:
            return  # the client went away: nobody to answer
        messages, complete = arrived
        receive = _replayed(messages, receive)
        if not complete:
            await app(scope, receive, send)
            return
        address = _address(scope)
        busy = await self.lines.enter(family) if self.lines is not None else None
        if busy is not None:
            await self.tarpit.hold(address, busy.details["retry_after_seconds"])
            await _refusal(scope, busy)(scope, receive, send)
            return
        place = _Place(self.lines, family)
        try:
            await app(scope, receive, _FailuresHeld(send, self.tarpit, address, place))
        finally:
            place.give_back()


class _Place:
    """A place taken in a family's line (none without lines), given back once."""

    def __init__(self, lines: Lines | None, family: Family) -> None:
        self.lines = lines
        self.family = family

    def give_back(self) -> None:
        if self.lines is not None:
            self.lines.leave(self.family)
            self.lines = None


class _FailuresHeld:
    """``send`` for a guess: the answer of a failed one (a client error) is held back
    by the tarpit when its address was refused or failed a moment before; its place
    in the line is given back first, so that a held answer keeps nobody waiting."""

    def __init__(self, send: Send, tarpit: Tarpit, address: str | None, place: _Place) -> None:
        self.send = send
        self.tarpit = tarpit
        self.address = address
        self.place = place

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
            self.place.give_back()
            await self.tarpit.hold(self.address, self.tarpit.seconds)
        await self.send(message)


def _refusal(scope: Scope, error: RateLimitedError | ServerBusyError) -> Response:
    path: str = scope["path"]
    if path.startswith("/api/"):
        return answer_for(error, scope["method"], path)
    return refusal_page(scope, error)


async def _body_messages(receive: Receive, max_body: int) -> tuple[list[Message], bool] | None:
    """The body's messages until its last (complete: True) or until they carry more
    than ``max_body`` bytes (False); None if the client disconnected first."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        messages.append(message)
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, True
        if size > max_body:
            return messages, False


def _replayed(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` again, then what ``receive`` gives."""
    pending = iter(messages)

    async def replay() -> Message:
        return next(pending, None) or await receive()

    return replay


def _address(scope: Scope) -> str | None:
    """The client address requests are counted and held back by."""
    client = scope.get("client")
    return client[0] if client else None


def _credential(scope: Scope, front: Family) -> str | None:
    wanted = b"authorization" if front is Family.API else b"cookie"
    for name, value in scope["headers"]:
        if name == wanted:
            if front is Family.API:
                return bearer_credential(value.decode("latin-1"))
            return cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE) or None
    return None
