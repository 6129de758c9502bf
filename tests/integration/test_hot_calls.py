"""The hot calls (server/api/hot.py) answer exactly as their FastAPI routes would.

Each request is sent twice: to the app as served (hot calls first) and to the same
app's FastAPI routing alone. Whatever a client can see (status, problem code and
detail, the answer's fields) must be the same; and the hot calls must really be
answered before FastAPI's routing, except the requests they leave to it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from fastapi import FastAPI, Query, Request
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response as HttpResponse
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from licentia.server.api.hot import MAX_BODY, HotCall, HotCalls, HotRequest, PassOn, hot
from tests.factories import VendorHandle
from tests.integration.test_cloud import CloudUser, _container
from tests.integration.test_device_sync import _activated, _post, _sync


class _RoutedOnly:
    """The app as FastAPI alone would answer it (no hot calls)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(self.app, scope, receive, send)


@contextmanager
def _routed_count(app: FastAPI) -> Iterator[list[str]]:
    """Paths that reached FastAPI's middleware and routing while the block ran."""
    reached: list[str] = []
    inner: ASGIApp = app.build_middleware_stack()

    async def counting(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            reached.append(scope["path"])
        await inner(scope, receive, send)

    before = app.middleware_stack
    app.middleware_stack = counting
    try:
        yield reached
    finally:
        app.middleware_stack = before


@pytest.fixture
def seats(vendors) -> tuple[VendorHandle, CloudUser, str, TestClient]:
    vendor = vendors.create()
    credential, product, _ = _container(
        vendor, delivery="seat_pool", seats=1, seat_counting="per_process", units=5
    )
    user = CloudUser(vendor, credential)
    routed = TestClient(_RoutedOnly(vendor.client.app), raise_server_exceptions=False)
    return vendor, user, product, routed


def _both(
    vendor: VendorHandle, routed: TestClient, method: str, path: str, **kwargs: Any
) -> tuple[HttpResponse, HttpResponse]:
    url = f"/api/v1/vendors/{vendor.slug}/cloud/{path}"
    return vendor.client.request(method, url, **kwargs), routed.request(method, url, **kwargs)


def _problem(response: HttpResponse) -> tuple[int, str, str, str]:
    body = response.json()
    return response.status_code, response.headers["content-type"], body["code"], body["detail"]


def test_a_seat_cycle_answers_the_same_fields_as_the_routes(seats) -> None:
    vendor, user, product, routed = seats
    auth = {"Authorization": f"Bearer {user.token}"}
    body = {"product": product, "user": "ann", "device": "pc", "process": "1"}
    taken, retaken = _both(vendor, routed, "POST", "seats", json=body, headers=auth)
    assert (taken.status_code, retaken.status_code) == (201, 201), (taken.text, retaken.text)
    assert taken.json().keys() == retaken.json().keys()
    assert retaken.json()["reconnected"] is True  # the hot checkout really took the seat
    lease = retaken.json()
    beat, beat_again = _both(
        vendor,
        routed,
        "POST",
        f"seats/{lease['lease_id']}/heartbeat",
        json={"fence": lease["fence"]},
        headers=auth,
    )
    assert (beat.status_code, beat_again.status_code) == (200, 200)
    assert beat.json().keys() == beat_again.json().keys() == lease.keys()
    release = f"seats/{lease['lease_id']}?fence={lease['fence']}"
    freed, freed_again = _both(vendor, routed, "DELETE", release, headers=auth)
    assert (freed.status_code, freed_again.status_code) == (204, 204)
    assert freed.content == freed_again.content == b""


def test_errors_raised_in_a_hot_call_are_the_routes_problems(seats) -> None:
    vendor, user, product, routed = seats
    auth = {"Authorization": f"Bearer {user.token}"}
    stale = {"json": {"fence": 7}, "headers": auth}
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"seats/{uuid.uuid4()}/heartbeat", stale),  # SEAT_LOST
        (
            "POST",
            "seats",
            {"json": {"product": "NOPE", "user": "a", "device": "d"}, "headers": auth},
        ),
        (
            "POST",
            "counters/consume",
            {"json": {"product": product, "units": 9, "key": "k"}, "headers": auth},
        ),
        ("DELETE", "seats/x?fence=1", {"headers": {"Authorization": "Bearer lcd_nope_nope"}}),
    ]
    for method, path, kwargs in cases:
        hot, plain = _both(vendor, routed, method, path, **kwargs)
        assert hot.status_code >= 400, hot.text
        assert _problem(hot) == _problem(plain)
    other = vendor.client.post(
        "/api/v1/vendors/no-such-vendor/cloud/seats/x/heartbeat", json={"fence": 1}, headers=auth
    )
    assert (other.status_code, other.json()["code"]) == (404, "NOT_FOUND")


def test_requests_a_hot_call_cannot_take_are_answered_by_the_routes(seats) -> None:
    vendor, user, product, routed = seats
    auth = {"Authorization": f"Bearer {user.token}"}
    beat = f"seats/{uuid.uuid4()}/heartbeat"
    cases: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", beat, {"json": {"fence": 1}}),  # no credential: 401
        ("POST", beat, {"json": {"fence": "many"}, "headers": auth}),  # 422 naming fence
        ("POST", beat, {"content": b"{", "headers": auth}),  # not JSON
        (
            "POST",
            beat,
            {"content": b'{"fence": 1}', "headers": auth | {"content-type": "text/plain"}},
        ),
        (
            "POST",
            "counters/consume",
            {"json": {"product": product, "units": 0, "key": "k"}, "headers": auth},
        ),
    ]  # a body over MAX_BODY is over the route's limit too: 413 before either (test_body_limits)
    app = vendor.client.app
    for method, path, kwargs in cases:
        with _routed_count(app) as reached:
            hot = vendor.client.request(
                method, f"/api/v1/vendors/{vendor.slug}/cloud/{path}", **kwargs
            )
        assert len(reached) == 1, (path, kwargs)  # handed on to FastAPI, once
        plain = routed.request(method, f"/api/v1/vendors/{vendor.slug}/cloud/{path}", **kwargs)
        assert (hot.status_code, hot.json()) == (plain.status_code, plain.json())
        assert hot.status_code in (400, 401, 404, 409, 415, 422), hot.text
    invalid = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/cloud/{beat}", json={"fence": "many"}, headers=auth
    )
    assert (invalid.status_code, invalid.json()["field"]) == (422, "fence")


def test_the_plain_cases_never_reach_fastapi(seats) -> None:
    vendor, user, product, _routed = seats
    app = vendor.client.app
    with _routed_count(app) as reached:
        lease = user.checkout(product, "ann").json()
        assert user.heartbeat(lease["lease_id"], lease["fence"]).status_code == 200
        assert user.release(lease["lease_id"], lease["fence"]).status_code == 204
        assert user.consume(product, 1, "once").status_code == 200
        assert user.consume(product, 1, "once").json()["replayed"] is True
        assert user.heartbeat(lease["lease_id"], lease["fence"]).json()["code"] == "SEAT_LOST"
    assert reached == []
    with _routed_count(app) as reached:
        assert user.check(product).status_code == 200  # not a hot call
    assert len(reached) == 1


async def _no_arguments(_request: Any) -> dict[str, Any]:
    return {}


def _call(method: str, path: str) -> HotCall:
    async def answer() -> Any:
        return path

    return HotCall(method, path, _no_arguments, answer)


def test_hot_calls_match_method_literal_segments_and_non_empty_parameters() -> None:
    table = HotCalls(
        [
            _call("POST", "/v/{slug}/seats"),
            _call("POST", "/v/{slug}/seats/{lease}/heartbeat"),
            _call("DELETE", "/v/{slug}/seats/{lease}"),
        ]
    )
    found = table.match("POST", "/v/acme/seats/L1/heartbeat")
    assert found is not None and found[1] == {"slug": "acme", "lease": "L1"}
    assert table.match("DELETE", "/v/acme/seats/L1") is not None
    assert table.match("GET", "/v/acme/seats/L1") is None
    assert table.match("POST", "/v/acme/seats/L1") is None
    assert table.match("POST", "/v//seats") is None
    assert table.match("POST", "/v/acme/seats/") is None
    assert table.match("POST", "/w/acme/seats") is None


def test_the_hot_table_is_the_routes_marked_hot(vendors) -> None:
    app = vendors.create().client.app
    base = "/api/v1/vendors/{slug}"
    assert sorted((call.method, call.path) for call in app.hot_calls.calls) == sorted(
        [
            ("GET", "/api/v1/licenses/{license_id}"),
            ("POST", f"{base}/devices/activate"),
            ("POST", f"{base}/devices/sync"),
            ("POST", f"{base}/cloud/seats"),
            ("POST", f"{base}/cloud/seats/{{lease_id}}/heartbeat"),
            ("DELETE", f"{base}/cloud/seats/{{lease_id}}"),
            ("POST", f"{base}/cloud/counters/consume"),
        ]
    )
    routes = {
        (method, route.path): route.endpoint
        for route in iter_route_contexts(app.routes)
        for method in route.methods or ()
    }
    for call in app.hot_calls.calls:  # answered by the route's own function
        assert call.answer is routes[call.method, call.path]


def test_a_route_marked_hot_must_say_how_each_argument_is_parsed() -> None:
    app = FastAPI()

    @app.get("/x/{name}")
    @hot
    async def unparsable(name: str, request: Request) -> Response:
        return Response(name)

    with pytest.raises(TypeError, match="request"):
        HotCalls.of_routes(app.routes)


def test_a_hot_call_keeps_the_bounds_of_its_query_parameters(vendors) -> None:
    app = FastAPI()

    @app.get("/x")
    @hot
    async def echo(code: str = Query(max_length=3)) -> Response:
        return Response(code)

    (call,) = HotCalls.of_routes(app.routes).calls
    request = HotRequest(vendors.create().client.app.state.services, {}, b"", None, None, b"", {})

    async def parsed(query: bytes) -> dict[str, Any]:
        return await call.parse(replace(request, query=query))

    assert asyncio.run(parsed(b"code=abc")) == {"code": "abc"}
    with pytest.raises(PassOn):  # FastAPI's route answers the 422 that names the bound
        asyncio.run(parsed(b"code=abcd"))


def test_a_license_read_answers_as_its_route(vendors) -> None:
    vendor, other = vendors.create(), vendors.create()
    template = vendor.template({})
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    license_id = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"][0]
    routed = TestClient(_RoutedOnly(vendor.client.app), raise_server_exceptions=False)
    path = f"/api/v1/licenses/{license_id}"
    orders_only = {"Authorization": f"Bearer {vendor.new_api_key(['orders:write'])}"}
    someone_else = {"Authorization": f"Bearer {other.new_api_key(['licenses:read'])}"}
    reader = {"Authorization": f"Bearer {vendor.new_api_key(['licenses:read'])}"}
    app = vendor.client.app
    with _routed_count(app) as reached:
        read = vendor.client.get(path, headers=reader)
    assert reached == []
    assert read.status_code == 200 and read.json() == routed.get(path, headers=reader).json()
    assert read.json()["id"] == license_id
    for headers, status in ((orders_only, 403), (someone_else, 404)):
        hot, plain = vendor.client.get(path, headers=headers), routed.get(path, headers=headers)
        assert hot.status_code == status
        assert _problem(hot) == _problem(plain)
    with _routed_count(app) as reached:
        anonymous = vendor.client.get(path, headers={"Authorization": ""})
    assert (anonymous.status_code, len(reached)) == (401, 1)


def test_device_activations_and_syncs_never_reach_fastapi(vendors) -> None:
    vendor = vendors.create()
    app = vendor.client.app
    with _routed_count(app) as reached:
        device, _listed = _activated(vendor)
        first, again = _sync(vendor, device), _sync(vendor, device)
        unconditional = _post(vendor, "sync", device.request("sync"))
        device.state = "a-state-never-issued"
        behind = _sync(vendor, device)
    assert (first.status_code, again.status_code) == (304, 304)
    assert first.headers["ETag"] == again.headers["ETag"]
    assert unconditional.status_code == 200  # no If-None-Match: the full sync
    assert behind.status_code == 200 and behind.headers["X-Licentia-Seq"] == "3"
    assert [path for path in reached if "/devices/" in path] == []


def test_a_device_message_the_hot_calls_cannot_take_gets_the_routes_answer(vendors) -> None:
    vendor = vendors.create()
    routed = TestClient(_RoutedOnly(vendor.client.app), raise_server_exceptions=False)
    base = f"/api/v1/vendors/{vendor.slug}/devices"
    for path, body in (
        ("activate", b"not.a.jws"),  # raised inside: the same problem as the route's
        ("sync", "é".encode()),  # not ASCII: handed on
        ("activate", b"x" * (MAX_BODY + 1)),  # too large for a hot call: handed on
    ):
        headers = {"Content-Type": "application/jose", "If-None-Match": "*"}
        hot = vendor.client.post(f"{base}/{path}", content=body, headers=headers)
        plain = routed.post(f"{base}/{path}", content=body, headers=headers)
        assert hot.status_code in (401, 422), hot.text
        assert _problem(hot) == _problem(plain)
