"""Each request's id and its count in the metrics, for every answer the app gives.

The id is the request's ``X-Request-ID`` when the connection comes from a proxy the
operator trusts (``LICENTIA_TRUSTED_PROXIES``: it saw the client and named the
request for its own log), else a new random one. It is bound to the logs' context
variables for as long as the request is served, so that every line written meanwhile
carries it (the access log's too), and is answered in ``X-Request-ID``.

The peer's trust is the connection's business: the server's protocol
(:mod:`licentia.server.api.connections`) marks the scope with :data:`PEER_TRUSTED`
before uvicorn replaces the client's address with the one the proxy forwarded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client.metrics import Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import Scope

from licentia.server.observability.metrics import REQUEST_SECONDS, REQUESTS

HEADER = "X-Request-ID"
PEER_TRUSTED = "licentia.peer_trusted"  # the scope's mark: the peer is a trusted proxy
ROUTE = "licentia.route"  # the scope's route template when FastAPI's routing was skipped
UNROUTED = "unrouted"  # answered before any route matched: 404, 413, 429
_HEADER = HEADER.lower().encode()
_ACCEPTED = re.compile(rb"[A-Za-z0-9._:+=/-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def request_id_of(scope: Scope) -> str:
    """The id of the request of ``scope``: its proxy's, or a new one."""
    if scope.get(PEER_TRUSTED):
        for name, value in scope["headers"]:
            if name == _HEADER and _ACCEPTED.fullmatch(value):
                return str(value.decode("ascii"))
    return os.urandom(12).hex()


class RequestCounts:
    """Counts answered requests. The labelled series are kept per (method, route,
    status): looking them up by their labels each time costs more than the count.

    ``templates`` maps each route object (by identity) to its full template: FastAPI
    puts the route in the scope with its own path only, without the prefixes of the
    routers that include it."""

    def __init__(
        self,
        templates: Mapping[int, str] | None = None,
        requests: Counter = REQUESTS,
        seconds: Histogram = REQUEST_SECONDS,
    ) -> None:
        self._templates = dict(templates or {})
        self._requests = requests
        self._seconds = seconds
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    @classmethod
    def of_routes(cls, routes: Sequence[BaseRoute]) -> RequestCounts:
        return cls(
            {
                id(route.original_route): route.path
                for route in iter_route_contexts(routes)
                if route.path is not None
            }
        )

    def route_of(self, scope: Mapping[str, Any]) -> str:
        """The template of the route that answered (``/api/v1/licenses/{license_id}``),
        never the path itself: a label value per license would have no end."""
        route = scope.get("route")
        if route is not None:
            template = self._templates.get(id(route)) or getattr(route, "path", None)
            if isinstance(template, str):
                return template
        found = scope.get(ROUTE)
        return found if isinstance(found, str) else UNROUTED

    def count(self, scope: Mapping[str, Any], status: int, seconds: float) -> None:
        method = scope["method"]
        if method not in _METHODS:
            method = "OTHER"
        route = self.route_of(scope)
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = (
                self._requests.labels(method, route, str(status)),
                self._seconds.labels(method, route),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)
