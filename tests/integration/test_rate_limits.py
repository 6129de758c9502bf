"""Rate limits: each family answers 429 with ``Retry-After`` and ``RATE_LIMITED`` once
its limit is reached, while another client (another address, another credential) is
served meanwhile; a client refused again gets its refusal late while everyone else is
served.

Each test builds an app of its own with small limits per hour, so no window ends
during a test; requests say which peer they come from through ``PEER``, which a shim
turns into the connection's address (what a server puts in the ASGI scope) before the
app sees the request.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from licentia.server.api import create_app
from licentia.server.api.hot import LicentiaApp
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.rate_limits.tarpit import Tarpit
from licentia.server.settings import Settings
from tests.factories import VendorFactory

PEER = "x-test-peer"
REDIS_URL = "redis://127.0.0.1:6379/0"


class Peers:
    """An ASGI app in front of ``app`` that gives each request the peer address its
    ``PEER`` header names (and drops the header)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = next((v for k, v in scope["headers"] if k == PEER.encode()), None)
            if peer is not None:
                headers = [(k, v) for k, v in scope["headers"] if k != PEER.encode()]
                scope = {**scope, "client": (peer.decode(), 40000), "headers": headers}
        await self.app(scope, receive, send)


class Client:
    """A test client of ``app`` whose requests come from ``address`` unless told
    otherwise."""

    def __init__(self, client: TestClient, app: LicentiaApp) -> None:
        self.client = client
        self.app = app

    def request(self, method: str, path: str, *, address: str, **kwargs: Any) -> Any:
        headers = {PEER: address, **kwargs.pop("headers", {})}
        return self.client.request(method, path, headers=headers, **kwargs)


@contextmanager
def limited_client(
    settings: Settings, database: Database, master: MasterKey, **limits: Any
) -> Iterator[Client]:
    # Refusals are answered at once unless a test is about holding them back.
    update = {"rate_limits": True, "rate_limit_hold_seconds": 0, **limits}
    app = create_app(settings.model_copy(update=update), database=database, master=master)
    assert isinstance(app, LicentiaApp)
    with TestClient(Peers(app), raise_server_exceptions=False) as client:
        yield Client(client, app)


@pytest.fixture
def limited(settings: Settings, database: Database, master: MasterKey) -> Callable[..., Any]:
    """``limited(rate_limit_login="2/hour", …)``: a client of an app with these limits."""
    return lambda **limits: limited_client(settings, database, master, **limits)


def address() -> str:
    """A client address no other test (nor the other backend's run) uses."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def assert_refused(response: Any, family: str) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (problem["code"], problem["family"]) == ("RATE_LIMITED", family)
    assert problem["retry_after_seconds"] == int(response.headers["Retry-After"])


def assert_page_refused(response: Any) -> None:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert response.headers["content-type"].startswith("text/html")
    assert "RATE_LIMITED" in response.text and "Wait a moment" in response.text
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


# --- the API ---------------------------------------------------------------------------


def test_the_hot_license_read_is_limited_per_address_and_another_address_is_served(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    license_id = vendor.license()["id"]
    attacker, other = address(), address()
    read = f"/api/v1/licenses/{license_id}"
    with limited(rate_limit_api="3/hour") as client:
        for _ in range(3):
            assert client.request("GET", read, address=attacker, headers=vendor.headers).is_success
        assert_refused(client.request("GET", read, address=attacker, headers=vendor.headers), "api")
        # Any API route, hot or not, with or without a credential, from that address:
        assert_refused(client.request("GET", "/api/v1/products", address=attacker), "api")
        second_key = vendor.new_api_key(["licenses:read"])
        served = client.request(
            "GET", read, address=other, headers={"Authorization": f"Bearer {second_key}"}
        )
        assert served.status_code == 200, served.text


def test_a_credential_is_limited_from_every_address_and_another_credential_is_served(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    leaked, own = vendor.new_api_key(["catalog:read"]), vendor.new_api_key(["catalog:read"])
    with limited(rate_limit_api="3/hour") as client:

        def products(key: str) -> Any:
            auth = {"Authorization": f"Bearer {key}"}
            return client.request("GET", "/api/v1/products", address=address(), headers=auth)

        for _ in range(3):
            assert products(leaked).status_code == 200
        assert_refused(products(leaked), "api")
        # The credential is read as every route reads it (two spaces, lower-case scheme).
        bent = {"Authorization": f"bearer  {leaked}"}
        assert_refused(
            client.request("GET", "/api/v1/products", address=address(), headers=bent), "api"
        )
        assert products(own).status_code == 200


@pytest.mark.parametrize(
    ("family", "method", "path", "body"),
    [
        ("login", "POST", "/sessions", {"vendor": "{slug}", "email": "a@b.c", "password": "x"}),
        ("ticket", "POST", "/vendors/{slug}/cloud/redeem", {"ticket": "AAAAA-AAAAA"}),
        (
            "registration",
            "POST",
            "/vendors/{slug}/cloud/devices",
            {"credential": "x", "name": "pc"},
        ),
        ("activation", "POST", "/vendors/{slug}/devices/activate", "not.a.jws"),
        ("activation", "POST", "/vendors/{slug}/devices/offline", "not.a.jws"),
    ],
)
def test_a_guessing_route_has_a_stricter_limit_of_its_own(
    vendors: VendorFactory,
    limited: Callable[..., Any],
    family: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    vendor = vendors.create()
    path = "/api/v1" + path.replace("{slug}", vendor.slug)
    send: dict[str, Any] = (
        {"json": {k: v.replace("{slug}", vendor.slug) for k, v in body.items()}}
        if isinstance(body, dict)
        else {"content": body, "headers": {"Content-Type": "application/jose"}}
    )
    guesser, other = address(), address()
    # Only this family is small: the API's own limit is far from reached.
    with limited(**{f"rate_limit_{family}": "2/hour"}) as client:
        for _ in range(2):
            answer = client.request(method, path, address=guesser, **send)
            assert 400 <= answer.status_code < 500 and answer.status_code != 429, answer.text
        assert_refused(client.request(method, path, address=guesser, **send), family)
        # The guesser's other API calls are still served; so is everyone else's guess.
        assert client.request(
            "GET", "/api/v1/products", address=guesser, headers=vendor.headers
        ).is_success
        answer = client.request(method, path, address=other, **send)
        assert answer.status_code != 429, answer.text


# --- the web fronts --------------------------------------------------------------------


def test_pages_are_limited_with_a_page_and_another_visitor_is_served(
    limited: Callable[..., Any],
) -> None:
    visitor, other = address(), address()
    with limited(rate_limit_pages="3/hour") as client:
        for _ in range(3):
            assert client.request("GET", "/console/login", address=visitor).status_code == 200
        assert_page_refused(client.request("GET", "/console/login", address=visitor))
        german = client.request("GET", "/", address=visitor, headers={"Accept-Language": "de"})
        assert german.status_code == 429 and "Warten Sie" in german.text
        assert client.request("GET", "/console/login", address=other).status_code == 200


def test_a_session_is_limited_on_pages_from_every_address(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    token = vendor.user_token("admin")
    with limited(rate_limit_pages="3/hour") as client:

        def dashboard(session: str) -> Any:
            cookies = {"Cookie": f"licentia_session={session}"}
            return client.request("GET", "/console/", address=address(), headers=cookies)

        for _ in range(3):
            assert dashboard(token).status_code == 200
        assert_page_refused(dashboard(token))
        assert dashboard(vendor.user_token("admin")).status_code == 200


@pytest.mark.parametrize(
    ("family", "path"),
    [
        ("login", "/console/login"),
        ("login", "/portal/{slug}/login"),
        ("ticket", "/portal/{slug}/tickets"),
        ("activation", "/portal/{slug}/offline/request"),
        ("password-reset", "/portal/{slug}/welcome/{token}"),
        ("password-reset", "/portal/{slug}/forgot"),
        ("password-reset", "/portal/{slug}/reset/{token}"),
        ("password-reset", "/console/forgot"),
        ("password-reset", "/console/reset/{slug}/{token}"),
    ],
)
def test_a_guessing_form_has_a_stricter_limit_of_its_own(
    vendors: VendorFactory, limited: Callable[..., Any], family: str, path: str
) -> None:
    vendor = vendors.create()
    path = path.replace("{slug}", vendor.slug).replace("{token}", secrets.token_urlsafe(16))
    guesser, other = address(), address()
    setting = f"rate_limit_{family.replace('-', '_')}"
    with limited(**{setting: "2/hour"}) as client:
        for _ in range(2):  # refused for their missing CSRF token, but counted
            assert client.request("POST", path, address=guesser).status_code != 429
        assert_page_refused(client.request("POST", path, address=guesser))
        assert client.request("GET", "/console/login", address=guesser).status_code == 200
        assert client.request("POST", path, address=other).status_code != 429


def test_the_set_password_link_page_counts_as_a_password_reset(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    guesser = address()
    with limited(rate_limit_password_reset="1/hour") as client:
        link = f"/portal/{vendor.slug}/welcome/{secrets.token_urlsafe(16)}"
        assert client.request("GET", link, address=guesser).status_code != 429
        assert_page_refused(client.request("GET", link, address=guesser))


# --- floods ----------------------------------------------------------------------------

WAIT = 30.0  # seconds: only so that a broken test fails instead of hanging


class Gate:
    """What a held refusal sleeps on instead of time passing: the test opens it."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.opened = threading.Event()
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.reached.set()
        await asyncio.to_thread(self.opened.wait, WAIT)


def test_a_client_refused_again_waits_for_its_refusal_while_others_are_served(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    attacker, other = address(), address()
    gate = Gate()
    with limited(rate_limit_api="2/hour") as client, ThreadPoolExecutor(1) as background:
        limits = client.app.request_limits
        assert limits is not None
        whole = lambda low, high: high  # noqa: E731 (in place of random.uniform)
        limits.tarpit = Tarpit(30.0, max_held=1, sleep=gate.sleep, uniform=whole)

        def products(source: str, headers: dict[str, str] = vendor.headers) -> Any:
            return client.request("GET", "/api/v1/products", address=source, headers=headers)

        assert [products(attacker).status_code for _ in range(2)] == [200, 200]
        assert_refused(products(attacker), "api")  # its first refusal: at once
        assert gate.slept == []
        held = background.submit(products, attacker)  # refused again: held back
        assert gate.reached.wait(WAIT)
        assert gate.slept == [30.0]  # the hold, shorter than its Retry-After (an hour)
        # Meanwhile another client is served, and the attacker's next refusal is
        # answered at once: one refusal is held at a time at most here.
        own_key = {"Authorization": f"Bearer {vendor.new_api_key(['catalog:read'])}"}
        assert products(other, own_key).status_code == 200
        assert_refused(products(attacker), "api")
        assert not held.done() and gate.slept == [30.0]
        gate.opened.set()
        assert_refused(held.result(WAIT), "api")
        assert limits.tarpit.held == 0


# --- settings --------------------------------------------------------------------------


def test_with_limits_off_nothing_is_counted(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    with limited(rate_limits=False, rate_limit_api="1/hour", rate_limit_login="1/hour") as client:
        for _ in range(3):
            assert client.request(
                "GET", "/api/v1/products", address="10.0.0.1", headers=vendor.headers
            ).is_success
            login = {"vendor": vendor.slug, "email": "a@b.c", "password": "x"}
            answer = client.request("POST", "/api/v1/sessions", address="10.0.0.1", json=login)
            assert answer.status_code == 401


def test_production_settings_limit_logins_by_default(
    vendors: VendorFactory, database: Database, master: MasterKey, database_url: str
) -> None:
    defaults = Settings(database_url=database_url)  # nothing set: what production runs
    assert defaults.environment == "production" and defaults.rate_limits
    vendor = vendors.create()
    app = create_app(defaults, database=database, master=master)
    guesser = address()
    with TestClient(Peers(app), raise_server_exceptions=False) as client:
        # A login is counted as it arrives, before its body is read: ten without a
        # password (refused before any hash, so the minute cannot run out on a busy
        # machine), then a real guess at another account.
        answers = [
            client.post(
                "/api/v1/sessions",
                json={"vendor": vendor.slug, "email": f"user{n}@example.com"},
                headers={PEER: guesser},
            ).status_code
            for n in range(10)
        ]
        guess = {"vendor": vendor.slug, "email": "user10@example.com", "password": "guess"}
        refused = client.post("/api/v1/sessions", json=guess, headers={PEER: guesser})
    assert answers == [422] * 10
    assert refused.status_code == 429  # LICENTIA_RATE_LIMIT_LOGIN: 10 a minute per address
    assert refused.json()["code"] == "RATE_LIMITED"


def test_a_limit_in_the_wrong_notation_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="rate_limit_login"):
        Settings(rate_limit_login="ten a minute")
    with pytest.raises(ValueError, match="rate_limit_storage"):
        Settings(rate_limit_storage="memcached://localhost")
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(trusted_proxies="10.0.0.1,proxy.example")


# --- several nodes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        message = f"Redis not reachable at {REDIS_URL}: {error}"
        if os.environ.get("CI"):  # CI has Redis: the several-nodes tests must run there
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


def test_two_nodes_sharing_redis_share_the_count(
    vendors: VendorFactory, limited: Callable[..., Any], redis_url: str
) -> None:
    vendor = vendors.create()
    guesser, other = address(), address()
    login = {"vendor": vendor.slug, "email": "a@b.c", "password": "x"}
    shared = {"rate_limit_storage": redis_url, "rate_limit_login": "3/hour"}
    with limited(**shared) as first, limited(**shared) as second:

        def log_in(node: Client, source: str) -> int:
            return int(
                node.request("POST", "/api/v1/sessions", address=source, json=login).status_code
            )

        assert [log_in(first, guesser), log_in(second, guesser), log_in(first, guesser)] == [
            401
        ] * 3
        refused = second.request("POST", "/api/v1/sessions", address=guesser, json=login)
        assert_refused(refused, "login")
        assert log_in(first, other) == 401 and log_in(second, other) == 401


def test_when_the_shared_storage_is_down_requests_are_served_uncounted(
    vendors: VendorFactory, limited: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    vendor = vendors.create()
    nowhere = "redis://127.0.0.1:9/0"  # the discard port: nothing answers Redis there
    with limited(rate_limit_storage=nowhere, rate_limit_api="1/hour") as client:
        for _ in range(3):
            answer = client.request(
                "GET", "/api/v1/products", address="10.0.0.3", headers=vendor.headers
            )
            assert answer.status_code == 200, answer.text
    warnings = [r for r in caplog.records if r.name == "licentia.rate_limits"]
    assert len(warnings) == 1 and "served uncounted" in warnings[0].getMessage()
