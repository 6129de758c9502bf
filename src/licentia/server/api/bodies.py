"""How large a request body may be: bounded per route, and refused before it is read.

Every route takes at most :data:`JSON_BODY` bytes, its page forms included. The few
that take more say so with FastAPI's own ``max_body_size`` (on the route, or on the
router that holds them): a device's signed message (:data:`DEVICE_MESSAGE`), a web
shop's event (:data:`SHOP_EVENT`), and the pages that upload a file
(``web/units.py``, ``FORM_WITH_FILE``).

Two checks make the limit hold before a large body costs anything:

- a declared ``Content-Length`` over the route's limit is answered here, by
  :meth:`BodyLimits.refusal`, before anything is read, before the hot calls (which
  bypass FastAPI) and before FastAPI's routing;
- a body without a length (``Transfer-Encoding: chunked``) is counted as it is read,
  by FastAPI (Starlette's ``RequestBodyLimitMiddleware``), which stops reading at the
  limit. The hot calls read at most :data:`JSON_BODY` bytes and hand a longer body to
  their FastAPI route, which counts on.

Either way the answer is ``413 BODY_TOO_LARGE`` (``problems.py``), naming the limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute
from starlette.types import Scope

from licentia.server.activation.messages import MAX_MESSAGE_BYTES

JSON_BODY = 64 * 1024
DEVICE_MESSAGE = MAX_MESSAGE_BYTES  # a compact JWS from a device, or JSON carrying one
# A web shop's event: Stripe's largest (a Checkout Session with expanded line items)
# stays well under this.
SHOP_EVENT = 512 * 1024


@dataclass(frozen=True)
class _Limit:
    methods: frozenset[str]
    path: re.Pattern[str]
    size: int


class BodyLimits:
    """The routes that take more than the default, and what each takes."""

    def __init__(self, default: int, limits: Sequence[_Limit]) -> None:
        self.default = default
        self._limits = tuple(limits)

    @classmethod
    def of_routes(cls, routes: Sequence[BaseRoute], default: int) -> BodyLimits:
        """The limits the app's routes declare (``max_body_size``, their routers'
        included), for each route whose limit is not the default."""
        limits = []
        for route in iter_route_contexts(routes):
            size = getattr(route, "max_body_size", None)
            if isinstance(route.original_route, APIRoute) and size not in (None, default):
                limits.append(_Limit(frozenset(route.methods or ()), route.path_regex, size))
        return cls(default, limits)

    def limit_for(self, method: str, path: str) -> int:
        """The limit of the route FastAPI would match (the default for none)."""
        for limit in self._limits:
            if method in limit.methods and limit.path.match(path):
                return limit.size
        return self.default

    def refusal(self, scope: Scope) -> int | None:
        """The route's limit when the request declares a longer body; None otherwise
        (no length, or one within the limit)."""
        declared = _content_length(scope)
        if declared is None or declared <= self.default:
            return None
        limit = self.limit_for(scope["method"], scope["path"])
        return limit if declared > limit else None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit():
                return None  # the server refuses such a request itself
            return int(value) if len(value) < 19 else 1 << 63  # int() of any length
    return None
