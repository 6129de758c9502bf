"""Finding the route of a request before FastAPI's routing, by splitting its path.

The hot calls (:mod:`licentia.server.api.hot`) and the rate limit families
(:mod:`licentia.server.api.limiting`) are found this way, from the marks their
routes carry, so that a route's method and path are declared once, by the route.
"""

from __future__ import annotations

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
    """Values by method and route path, matched by method, segment count and literal
    segments; a parameter matches any non-empty segment."""

    def __init__(self, entries: Iterable[tuple[str, str, T]]) -> None:
        self._entries: dict[tuple[str, int], list[tuple[tuple[str | None, ...], list[str], T]]]
        self._entries = {}
        for method, path, value in entries:
            parts = path.split("/")
            segments = tuple(None if parameter(part) else part for part in parts)
            names = [name for part in parts if (name := parameter(part))]
            self._entries.setdefault((method, len(parts)), []).append((segments, names, value))

    def match(self, method: str, path: str) -> tuple[T, dict[str, str]] | None:
        """The value for a request, with the path's parameters by name; None if no
        route of the table has this method and path."""
        parts = path.split("/")
        for segments, names, value in self._entries.get((method, len(parts)), ()):
            values = []
            for pattern, part in zip(segments, parts, strict=True):
                if pattern is None:
                    if not part:
                        break
                    values.append(part)
                elif pattern != part:
                    break
            else:
                return value, dict(zip(names, values, strict=True))
        return None
