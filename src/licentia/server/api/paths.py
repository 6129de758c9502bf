"""Finding the route of a request before FastAPI's routing, by splitting its path.

The hot calls (:mod:`licentia.server.api.hot`) and the rate limit families
(:mod:`licentia.server.api.limiting`) are found this way, from the marks their
routes carry, so that a route's method and path are declared once, by the route.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

T = TypeVar("T")


def parameter(segment: str) -> str | None:
    """The name of a path parameter segment (``{name}``), else None."""
    if segment.startswith("{") and segment.endswith("}"):
        return segment[1:-1]
    return None


def marked_routes(
    routes: Sequence[BaseRoute], marked: Callable[[Callable[..., Any]], bool]
) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """``(method, path, endpoint)`` of every route whose function is ``marked``, with
    its full path (its routers' prefixes included)."""
    for route in iter_route_contexts(routes):
        if (
            isinstance(route.original_route, APIRoute)
            and route.path is not None
            and route.endpoint is not None
            and marked(route.endpoint)
        ):
            for method in sorted(route.methods or ()):
                yield method, route.path, route.endpoint


class PathTable(Generic[T]):
    """Values by method and route path; a parameter matches any non-empty segment.
    The paths of a method are compiled into one regular expression, tried in the
    order they were given: a request that none of them takes (most requests, for the
    rate limit families) costs one failed match."""

    def __init__(self, entries: Iterable[tuple[str, str, T]]) -> None:
        alternatives: dict[str, list[str]] = {}
        # By method: each path's value and parameter names, by the number of the
        # group that encloses the path's pattern (its parameters are the next groups).
        self._values: dict[str, dict[int, tuple[T, tuple[str, ...]]]] = {}
        for method, path, value in entries:
            parts = path.split("/")
            names = tuple(name for part in parts if (name := parameter(part)))
            pattern = "/".join("([^/]+)" if parameter(p) else re.escape(p) for p in parts)
            values = self._values.setdefault(method, {})
            groups = sum(1 + len(earlier) for _, earlier in values.values())
            values[groups + 1] = (value, names)
            alternatives.setdefault(method, []).append(f"({pattern})")
        self._patterns = {
            method: re.compile("|".join(patterns)) for method, patterns in alternatives.items()
        }

    def match(self, method: str, path: str) -> tuple[T, dict[str, str]] | None:
        """The value for a request, with the path's parameters by name; None if no
        route of the table has this method and path."""
        pattern = self._patterns.get(method)
        found = pattern.fullmatch(path) if pattern is not None else None
        if found is None or found.lastindex is None:
            return None
        value, names = self._values[method][found.lastindex]
        first = found.lastindex  # groups() counts from 0: its parameters start here
        return value, dict(zip(names, found.groups()[first : first + len(names)], strict=True))
