"""What a hot call's parse sees and may do (:mod:`licentia.server.api.hot`).

Kept apart from the table of hot calls, so that a dependency (e.g. ``require`` in
:mod:`licentia.server.api.context`) can say how a hot call finds its value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from licentia.server.api.bodies import JSON_BODY

if TYPE_CHECKING:
    from licentia.server.api.context import Services

# A hot call reads no more than any route takes; a longer body goes to its FastAPI
# route, which counts on up to the route's own limit (api/bodies.py).
MAX_BODY = JSON_BODY
PARSE = "__licentia_hot_parse__"


class PassOn(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a hot call's parse to leave the request to its FastAPI route. Only
    before it has done anything: the route then does it all."""


@dataclass(frozen=True)
class HotRequest:
    """What a hot call's parse gets: the path's parameters by name, the query
    string, the bearer credential, the body."""

    services: Services
    params: dict[str, str]
    query: bytes  # the query string, as it came
    token: str | None
    client_host: str | None
    body: bytes
    headers: dict[bytes, bytes]  # those :data:`HEADERS` names, lower case


M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])
Parse = Callable[[HotRequest], Any]  # a value, or an awaitable of one


def body_of(model: type[M], request: HotRequest) -> M:
    """The JSON body as ``model``; PassOn if it does not validate (FastAPI's route
    answers the 422 that names the field)."""
    try:
        return model.model_validate_json(request.body)
    except ValidationError:
        raise PassOn from None


def parsed_by(parse: Parse) -> Callable[[F], F]:
    """Mark a dependency with how a hot call finds its value: ``parse(request)``
    (which may raise PassOn, before it does anything)."""

    def mark(dependency: F) -> F:
        setattr(dependency, PARSE, parse)
        return dependency

    return mark
