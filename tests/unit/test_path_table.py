"""The path table that finds a hot call or a rate limit family before FastAPI's
routing: it must take the route FastAPI would take, and nothing else."""

from __future__ import annotations

import pytest
from starlette.routing import Match, Route

from licentia.server.api.paths import PathTable

ROUTES = [
    ("GET", "/api/v1/licenses/{license_id}"),
    ("GET", "/api/v1/licenses/{license_id}/seats"),
    ("POST", "/api/v1/vendors/{slug}/cloud/redeem"),
    ("POST", "/api/v1/vendors/{slug}/cloud/{kind}"),  # overlaps the one above
    ("GET", "/api/v1/keys/jwks.json"),  # a literal with a dot
    ("POST", "/api/v1/sessions"),
]
TABLE = PathTable((method, path, path) for method, path in ROUTES)


def starlette_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The first route Starlette takes for the request, as the table answers."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route_method, route_path in ROUTES:
        route = Route(route_path, lambda _: None, methods=[route_method])
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route_path, child["path_params"]
    return None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/licenses/LIC1"),
        ("GET", "/api/v1/licenses/LIC1/seats"),
        ("POST", "/api/v1/vendors/acme/cloud/redeem"),
        ("POST", "/api/v1/vendors/acme/cloud/devices"),
        ("GET", "/api/v1/keys/jwks.json"),
        ("POST", "/api/v1/sessions"),
    ],
)
def test_a_route_path_finds_its_route_and_parameters_as_starlette_does(
    method: str, path: str
) -> None:
    found = TABLE.match(method, path)
    assert found is not None
    assert found == starlette_route(method, path)


def test_of_two_routes_that_take_a_path_the_first_declared_wins() -> None:
    assert TABLE.match("POST", "/api/v1/vendors/acme/cloud/redeem") == (
        "/api/v1/vendors/{slug}/cloud/redeem",
        {"slug": "acme"},
    )
    assert TABLE.match("POST", "/api/v1/vendors/acme/cloud/devices") == (
        "/api/v1/vendors/{slug}/cloud/{kind}",
        {"slug": "acme", "kind": "devices"},
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/licenses/"),  # an empty parameter
        ("GET", "/api/v1/licenses//seats"),
        ("GET", "/api/v1/licenses/LIC1/"),  # a trailing slash
        ("GET", "/api/v1/licenses/LIC1/seats/more"),
        ("GET", "/api/v1/keys/jwksXjson"),  # the dot is a dot, not any character
        ("DELETE", "/api/v1/licenses/LIC1"),  # no route of this method
        ("GET", "/api/v1/sessions"),  # a route of another method
        ("POST", "/api/v1/sessionsX"),
    ],
)
def test_a_path_no_route_takes_finds_nothing(method: str, path: str) -> None:
    assert TABLE.match(method, path) is None
    assert starlette_route(method, path) is None


def test_an_empty_table_finds_nothing() -> None:
    assert PathTable[str](()).match("GET", "/api/v1/licenses/LIC1") is None
