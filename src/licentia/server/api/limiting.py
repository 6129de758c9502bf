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
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from licentia.server.api.bearer import bearer_credential
from licentia.server.api.paths import PathTable, marked_routes
from licentia.server.api.problems import answer_for
from licentia.server.rate_limits.families import Family, family_of
from licentia.server.rate_limits.limiter import Limiter
from licentia.server.rate_limits.tarpit import Tarpit
from licentia.server.web.app import is_page, rate_limited_page
from licentia.server.web.sessions import SESSION_COOKIE


class RequestLimits:
    """The limiter, the table of routes that declared a family of their own, and the
    tarpit that holds repeated refusals back."""

    def __init__(self, limiter: Limiter, families: PathTable[Family], tarpit: Tarpit) -> None:
        self.limiter = limiter
        self.families = families
        self.tarpit = tarpit

    @classmethod
    def of_routes(
        cls, limiter: Limiter, routes: Sequence[BaseRoute], tarpit: Tarpit
    ) -> RequestLimits:
        declared = (
            (method, path, family)
            for method, path, endpoint in marked_routes(routes, lambda e: bool(family_of(e)))
            if (family := family_of(endpoint)) is not None
        )
        return cls(limiter, PathTable(declared), tarpit)

    async def refusal(self, scope: Scope) -> Response | None:
        """The answer refusing this request when it is over a limit (held back by the
        tarpit), else None: it has been counted."""
        path: str = scope["path"]
        if path.startswith("/api/"):
            front = Family.API
        elif is_page(path):
            front = Family.PAGES
        else:
            return None
        found = self.families.match(scope["method"], path)
        families = (found[0], front) if found is not None else (front,)
        client = scope.get("client")
        address = client[0] if client else None
        error = await self.limiter.refusal(families, address, _credential(scope, front))
        if error is None:
            return None
        await self.tarpit.hold(address, error.retry_after_seconds)
        if front is Family.API:
            return answer_for(error, scope["method"], path)
        return rate_limited_page(scope, error)


def _credential(scope: Scope, front: Family) -> str | None:
    wanted = b"authorization" if front is Family.API else b"cookie"
    for name, value in scope["headers"]:
        if name == wanted:
            if front is Family.API:
                return bearer_credential(value.decode("latin-1"))
            return cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE) or None
    return None
