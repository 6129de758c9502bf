"""A line per guessing family: at most ``LICENTIA_GUESSES_AT_ONCE`` requests of a lined
family (logins, ticket codes, container credentials, e-mailed links) are served at
once by a process; one more is answered ``503 FAMILY_BUSY`` at once, before any work,
while every other request, and the other families, are served (docs/security.md,
"Abuse limits").

The places are taken by real requests parked inside their work (a password check, a
ticket's redemption) until the test lets them go on, so no test depends on timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest

from licentia.formats.tickets import generate_ticket_code
from licentia.server.api.context import Services
from licentia.server.cloud import calls
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.rate_limits.families import Family
from licentia.server.rate_limits.lines import Lines
from licentia.server.rate_limits.tarpit import Tarpit
from licentia.server.settings import Settings
from licentia.server.tenancy.passwords import PasswordChecks
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.test_logins import _user
from tests.integration.test_rate_limits import Client, Gate, address, limited_client

WAIT = 120  # seconds: a bound for a broken test, never reached by a passing one
AT_ONCE = 2


class Parked:
    """Counts the requests that reached their work and holds them there until
    ``go_on`` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Semaphore(0)
        self.go_on = threading.Event()

    def wait_here(self) -> None:
        self.arrived.release()
        assert self.go_on.wait(WAIT), "the test never let the request go on"

    def wait_for(self, count: int) -> None:
        for _ in range(count):
            assert self.arrived.acquire(timeout=WAIT), "a request never reached its work"


class _ParkedChecks(PasswordChecks):
    def __init__(self, parked: Parked) -> None:
        super().__init__(4)
        self.parked = parked

    def matches(self, stored: str | None, password: str) -> bool:
        self.parked.wait_here()
        return super().matches(stored, password)


@pytest.fixture
def limited(settings: Settings, database: Database, master: MasterKey) -> Callable[..., Any]:
    """``limited(guesses_at_once=1)``: a client of an app with these settings and the
    rate limits on (far from reached here). Its lines make nobody wait for a place
    (a request beyond the places is refused at once) unless ``patience`` is given."""

    @contextmanager
    def client(*, patience: float = 0.0, **limits: Any) -> Iterator[Client]:
        with limited_client(settings, database, master, **limits) as made:
            assert made.app.request_limits is not None
            if made.app.request_limits.lines is not None:
                made.app.request_limits.lines.patience = patience
            yield made

    return client


@pytest.fixture
def lined(limited: Callable[..., Any]) -> Iterator[tuple[Client, Parked]]:
    """A client of an app with a line of ``AT_ONCE`` places per family and rate limits
    far from reached, whose password checks park until the test lets them go on."""
    parked = Parked()
    with limited(guesses_at_once=AT_ONCE, password_checks=AT_ONCE) as client:
        services: Services = client.app.state.services
        checks = _ParkedChecks(parked)
        client.app.state.services = dataclasses.replace(services, password_checks=checks)
        yield client, parked
        parked.go_on.set()


def _log_in(client: Client, vendor: VendorHandle, email: str, password: str, source: str) -> Any:
    body = {"vendor": vendor.slug, "email": email, "password": password}
    return client.request("POST", "/api/v1/sessions", address=source, json=body)


def _redeem(client: Client, vendor: VendorHandle, source: str) -> Any:
    path = f"/api/v1/vendors/{vendor.slug}/cloud/redeem"
    return client.request("POST", path, address=source, json={"ticket": generate_ticket_code()})


def assert_busy(response: Any, family: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert (problem["code"], problem["family"]) == ("FAMILY_BUSY", family)
    assert "try again" in problem["detail"]


# --- tests ---------------------------------------------------------------------------------


def test_a_login_beyond_the_line_is_refused_at_once_while_everyone_else_is_served(
    vendors: VendorFactory, lined: tuple[Client, Parked]
) -> None:
    client, parked = lined
    vendor = vendors.create()
    email = _user(vendor)
    license_id = vendor.license()["id"]
    guessers = [address() for _ in range(AT_ONCE + 1)]
    with ThreadPoolExecutor(AT_ONCE) as background:
        inside = [
            background.submit(_log_in, client, vendor, f"{n}@example.test", "wrong", source)
            for n, source in enumerate(guessers[:AT_ONCE])
        ]
        parked.wait_for(AT_ONCE)  # every place of the line is taken now
        assert_busy(_log_in(client, vendor, email, PASSWORD, guessers[-1]), "login")
        # Meanwhile the API, and the ticket family, are served.
        read = client.request(
            "GET", f"/api/v1/licenses/{license_id}", address=address(), headers=vendor.headers
        )
        assert read.status_code == 200 and read.json()["id"] == license_id
        guess = _redeem(client, vendor, address())
        assert (guess.status_code, guess.json()["code"]) == (404, "TICKET_NOT_FOUND")
        parked.go_on.set()
        assert [f.result(WAIT).status_code for f in inside] == [401] * AT_ONCE
    # Places are given back: a user who mistyped once logs in with the right password.
    user = address()
    assert _log_in(client, vendor, email, "mistyped", user).status_code == 401
    assert _log_in(client, vendor, email, PASSWORD, user).status_code == 201
    assert client.app.request_limits is not None
    lines = client.app.request_limits.lines
    assert lines is not None and sum(lines.serving.values()) == 0


def test_a_ticket_guess_beyond_the_line_is_refused_at_once_while_logins_are_served(
    vendors: VendorFactory, lined: tuple[Client, Parked], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, parked = lined
    parked_tickets = Parked()
    redeem = calls.redeem

    async def parked_redeem(*args: Any) -> Any:
        await asyncio.to_thread(parked_tickets.wait_here)
        return await redeem(*args)

    monkeypatch.setattr(calls, "redeem", parked_redeem)
    parked.go_on.set()  # password checks are not parked here
    vendor = vendors.create()
    email = _user(vendor)
    with ThreadPoolExecutor(AT_ONCE) as background:
        inside = [background.submit(_redeem, client, vendor, address()) for _ in range(AT_ONCE)]
        parked_tickets.wait_for(AT_ONCE)
        assert_busy(_redeem(client, vendor, address()), "ticket")
        assert _log_in(client, vendor, email, PASSWORD, address()).status_code == 201
        parked_tickets.go_on.set()
        assert [f.result(WAIT).json()["code"] for f in inside] == ["TICKET_NOT_FOUND"] * AT_ONCE
    assert _redeem(client, vendor, address()).json()["code"] == "TICKET_NOT_FOUND"


def test_the_login_line_has_no_more_places_than_the_password_checks(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    """With fewer password checks than places, a login beyond the checks is refused by
    the line (before any database read), not after reading the user (LOGINS_BUSY)."""
    parked = Parked()
    vendor = vendors.create()
    email = _user(vendor)
    with limited(guesses_at_once=4, password_checks=1) as client, ThreadPoolExecutor(1) as pool:
        services: Services = client.app.state.services
        checks = _ParkedChecks(parked)
        client.app.state.services = dataclasses.replace(services, password_checks=checks)
        try:
            inside = pool.submit(_log_in, client, vendor, "a@example.test", "wrong", address())
            parked.wait_for(1)
            assert_busy(_log_in(client, vendor, email, PASSWORD, address()), "login")
            guess = _redeem(client, vendor, address())  # the ticket line has its 4 places
            assert guess.json()["code"] == "TICKET_NOT_FOUND"
        finally:
            parked.go_on.set()
        assert inside.result(WAIT).status_code == 401
        assert _log_in(client, vendor, email, PASSWORD, address()).status_code == 201


@pytest.mark.parametrize(
    ("language", "sentence"),
    [
        ("en", "Many requests like this one are being answered right now."),
        ("de", "Gerade werden viele Anfragen wie diese beantwortet."),
    ],
)
def test_a_login_form_beyond_the_line_is_refused_with_a_page(
    vendors: VendorFactory, limited: Callable[..., Any], language: str, sentence: str
) -> None:
    vendor = vendors.create()
    with limited(guesses_at_once=1) as client:
        limits = client.app.request_limits
        assert limits is not None and limits.lines is not None
        # The one place is taken (as a login being checked would take it).
        assert limits.lines.take(Family.LOGIN)
        form = {"email": "someone@example.test", "password": "wrong", "csrf": "x"}
        page = client.request(
            "POST",
            f"/portal/{vendor.slug}/login",
            address=address(),
            data=form,
            headers={"Accept-Language": language},
        )
        assert page.status_code == 503, page.text
        assert page.headers["Retry-After"] == "1"
        assert page.headers["content-type"].startswith("text/html")
        assert "FAMILY_BUSY" in page.text and sentence in page.text
        limits.lines.leave(Family.LOGIN)
        # With the place given back the same form is answered by its page again.
        again = client.request("POST", f"/portal/{vendor.slug}/login", address=address(), data=form)
        assert again.status_code != 503 and "FAMILY_BUSY" not in again.text


def test_a_request_takes_its_place_only_once_its_body_has_arrived(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    """A client that sends its body slowly holds no place while it does: the line
    cannot be filled by a few slow clients."""
    vendor = vendors.create()
    with limited(guesses_at_once=1) as client:
        limits = client.app.request_limits
        assert limits is not None and limits.lines is not None
        lines: Lines = limits.lines
        body = b'{"vendor": "%s", "email": "a@example.test", "password": "wrong"}' % (
            vendor.slug.encode()
        )
        result = client.client.portal.call(_slow_login, client, body, lines)
        waiting_places, status = result
        assert waiting_places == 0  # while the body had not all arrived
        assert status == 401  # then it was served
        assert lines.serving[Family.LOGIN] == 0


async def _slow_login(client: Client, body: bytes, lines: Lines) -> tuple[int, int]:
    """A login whose body arrives in two parts; the places taken between the two, and
    the answer's status."""
    first_part_read = asyncio.Event()
    rest = asyncio.Event()
    parts = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.request", "body": body[10:], "more_body": False},
    ]
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        if len(parts) == 1:
            first_part_read.set()
            await rest.wait()
        return parts.pop(0) if parts else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/sessions",
        "raw_path": b"/api/v1/sessions",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": (address(), 40000),
        "server": ("testserver", 80),
        "state": {},
    }
    answered = asyncio.ensure_future(client.app(scope, receive, send))
    await first_part_read.wait()
    waiting_places = lines.serving[Family.LOGIN]
    rest.set()
    await answered
    return waiting_places, statuses[0]


# --- failed guesses and busy refusals, held back ----------------------------------------


def _gated(client: Client) -> tuple[Gate, Lines | None]:
    """Give ``client``'s app a tarpit of 2 s holds (the whole hold each time) whose
    held answers wait for the test to open the gate; and its lines."""
    limits = client.app.request_limits
    assert limits is not None
    gate = Gate()
    whole = lambda low, high: high  # noqa: E731 (in place of random.uniform)
    limits.tarpit = Tarpit(2.0, max_held=10, sleep=gate.sleep, uniform=whole)
    return gate, limits.lines


def test_a_guess_that_fails_again_is_answered_late_while_a_right_one_is_served_at_once(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    email = _user(vendor)
    guesser = address()
    with limited(guesses_at_once=AT_ONCE) as client, ThreadPoolExecutor(1) as background:
        gate, lines = _gated(client)
        assert _log_in(client, vendor, email, "wrong", guesser).status_code == 401  # at once
        assert gate.slept == []
        held = background.submit(_log_in, client, vendor, email, "wrong again", guesser)
        assert gate.reached.wait(WAIT)
        assert gate.slept == [2.0]
        # Its place in the line was given back before its answer began to wait.
        assert lines is not None and lines.serving[Family.LOGIN] == 0
        # The right password from the same address is never held; another address's
        # first failure is answered at once.
        assert _log_in(client, vendor, email, PASSWORD, guesser).status_code == 201
        assert _log_in(client, vendor, email, "typo", address()).status_code == 401
        assert not held.done() and gate.slept == [2.0]
        gate.opened.set()
        answer = held.result(WAIT)
        assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED")


def test_a_wrong_ticket_code_typed_again_on_the_portal_is_answered_late(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    guesser = address()

    def look_up(source: str) -> Any:
        form = {"codes": generate_ticket_code(), "csrf_token": token}
        return client.request("POST", f"/portal/{vendor.slug}/tickets", address=source, data=form)

    with limited(guesses_at_once=AT_ONCE) as client, ThreadPoolExecutor(1) as background:
        page = client.request("GET", f"/portal/{vendor.slug}/", address=address())
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None, page.text
        token = found.group(1)
        gate, _ = _gated(client)
        first = look_up(guesser)
        assert first.status_code == 422 and "TICKET_NOT_FOUND" in first.text
        held = background.submit(look_up, guesser)
        assert gate.reached.wait(WAIT) and not held.done()
        assert look_up(address()).status_code == 422  # another visitor: at once
        gate.opened.set()
        again = held.result(WAIT)
        assert again.status_code == 422 and "TICKET_NOT_FOUND" in again.text
        assert again.headers["content-type"].startswith("text/html")


def test_a_busy_refusal_asked_for_again_at_once_is_answered_late(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    guesser = address()
    with limited(guesses_at_once=1) as client, ThreadPoolExecutor(1) as background:
        gate, lines = _gated(client)
        assert lines is not None and lines.take(Family.LOGIN)  # the one place
        try:
            assert_busy(_log_in(client, vendor, "a@example.test", "x", guesser), "login")
            assert gate.slept == []
            held = background.submit(_log_in, client, vendor, "b@example.test", "x", guesser)
            assert gate.reached.wait(WAIT)
            assert gate.slept == [1.0]  # its Retry-After, shorter than the 2 s hold
            assert_busy(_log_in(client, vendor, "c@example.test", "x", address()), "login")
            gate.opened.set()
            assert_busy(held.result(WAIT), "login")
        finally:
            lines.leave(Family.LOGIN)


def test_a_ticket_guess_is_answered_while_a_write_holds_sqlite_s_lock(
    vendors: VendorFactory, limited: Callable[..., Any], database: Database
) -> None:
    """A code no ticket has is refused after a read: guessing takes no write
    transaction, so it neither waits for SQLite's one writer nor makes writers wait."""
    if database.write_engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL has no process-wide write lock")
    vendor = vendors.create()
    with limited(guesses_at_once=AT_ONCE) as client, ThreadPoolExecutor(1) as background:
        with database.write_lock:  # a long write of another request
            guess = background.submit(_redeem, client, vendor, address())
            answer = guess.result(WAIT)
        assert (answer.status_code, answer.json()["code"]) == (404, "TICKET_NOT_FOUND")


# --- waiting for a place ------------------------------------------------------------------


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def test_logins_while_the_line_is_full_wait_for_a_place_and_one_more_is_refused_at_once(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    """Two people logging in at the same moment are both served; a flood fills the
    places and the waiting room, and what comes beyond is refused at once."""
    parked = Parked()
    vendor = vendors.create()
    email = _user(vendor)
    with (
        limited(guesses_at_once=AT_ONCE, password_checks=AT_ONCE, patience=WAIT) as client,
        ThreadPoolExecutor(2 * AT_ONCE) as background,
    ):
        services: Services = client.app.state.services
        checks = _ParkedChecks(parked)
        client.app.state.services = dataclasses.replace(services, password_checks=checks)
        assert client.app.request_limits is not None
        lines = client.app.request_limits.lines
        assert lines is not None
        try:
            inside = [
                background.submit(_log_in, client, vendor, f"{n}@example.test", "x", address())
                for n in range(AT_ONCE)
            ]
            parked.wait_for(AT_ONCE)  # every place taken
            waiting = [
                background.submit(_log_in, client, vendor, email, PASSWORD, address())
                for _ in range(AT_ONCE)
            ]
            _until(lambda: len(lines.waiting[Family.LOGIN]) == AT_ONCE)
            assert_busy(_log_in(client, vendor, email, PASSWORD, address()), "login")
            assert not any(login.done() for login in waiting)
        finally:
            parked.go_on.set()
        assert [login.result(WAIT).status_code for login in inside] == [401] * AT_ONCE
        assert [login.result(WAIT).status_code for login in waiting] == [201] * AT_ONCE
    assert lines.serving[Family.LOGIN] == 0 and not lines.waiting[Family.LOGIN]


def test_a_request_that_waited_in_vain_is_refused_and_leaves_the_line(
    vendors: VendorFactory, limited: Callable[..., Any]
) -> None:
    vendor = vendors.create()
    with limited(guesses_at_once=1, patience=0.05) as client:
        assert client.app.request_limits is not None
        lines = client.app.request_limits.lines
        assert lines is not None and lines.take(Family.LOGIN)
        assert_busy(_log_in(client, vendor, "a@example.test", "x", address()), "login")
        assert not lines.waiting[Family.LOGIN]
        lines.leave(Family.LOGIN)
        assert _log_in(client, vendor, "a@example.test", "x", address()).status_code == 401
