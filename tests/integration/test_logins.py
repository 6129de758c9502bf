"""Logins are no denial of service: a password is checked outside any transaction, a
bounded number at a time per process, and a login beyond that is refused at once
(docs/security.md)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from licentia.domain.actors import operator
from licentia.server.api import create_app
from licentia.server.api.context import Services
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from licentia.server.tenancy import services as tenancy
from licentia.server.tenancy.passwords import PasswordChecks
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.test_errors import assert_problem


def _user(vendor: VendorHandle) -> str:
    email = f"{vendor.unique('staff')}@example.test"
    with vendor.database.transaction() as session:
        tenancy.create_user(
            session, operator(vendor.id), vendor.id, email=email, password=PASSWORD, role="admin"
        )
    return email


def _login(client: TestClient | httpx.Client, vendor: VendorHandle, email: str, password: str):
    body = {"vendor": vendor.slug, "email": email, "password": password}
    return client.post("/api/v1/sessions", json=body)


def test_a_login_beyond_the_concurrent_checks_is_refused_at_once(
    vendors: VendorFactory, app: FastAPI
) -> None:
    vendor = vendors.create()
    email = _user(vendor)
    checks: PasswordChecks = app.state.services.password_checks
    with ExitStack() as taken:
        for _ in range(checks.limit):
            taken.enter_context(checks.slot())
        busy = _login(vendor.client, vendor, email, PASSWORD)
    body = assert_problem(busy, 503, "LOGINS_BUSY")
    assert busy.headers["retry-after"] == "1"
    assert "try again" in body["detail"]
    assert _login(vendor.client, vendor, email, PASSWORD).status_code == 201


class _ParkedChecks(PasswordChecks):
    """Password checks that wait, inside the check, until the test lets them go on."""

    def __init__(self) -> None:
        super().__init__(4)
        self.inside = threading.Event()
        self.go_on = threading.Event()

    def matches(self, stored: str | None, password: str) -> bool:
        self.inside.set()
        assert self.go_on.wait(120), "the test never let the check go on"
        return super().matches(stored, password)


@pytest.fixture
def parked_app(
    settings: Settings, database: Database, master: MasterKey
) -> Iterator[tuple[TestClient, _ParkedChecks]]:
    app = create_app(settings, database=database, master=master)
    checks = _ParkedChecks()
    services: Services = app.state.services
    app.state.services = dataclasses.replace(services, password_checks=checks)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, checks
    checks.go_on.set()


def test_while_a_password_is_checked_the_database_serves_everyone_else(
    vendors: VendorFactory, parked_app: tuple[TestClient, _ParkedChecks]
) -> None:
    client, checks = parked_app
    vendor = vendors.create()
    email = _user(vendor)
    with ThreadPoolExecutor(max_workers=2) as pool:
        login = pool.submit(_login, client, vendor, email, PASSWORD)
        assert checks.inside.wait(120)
        # The login is inside its password check now. When the check ran inside the
        # login's write transaction, this order waited for it (on SQLite for the write
        # lock) and the test timed out here.
        order = pool.submit(vendor.order)
        assert order.result(timeout=120)["ticket_code"]
        checks.go_on.set()
        assert login.result(timeout=120).status_code == 201


def test_a_flood_of_wrong_passwords_leaves_an_order_served_and_no_server_error(
    vendors: VendorFactory, live_server: str
) -> None:
    vendor = vendors.create()
    email = _user(vendor)
    template = vendor.template()

    def attack(n: int) -> list[httpx.Response]:
        with httpx.Client(base_url=live_server, timeout=120) as attacker:
            # Guesses at other accounts too: each account is locked at its fifth failure.
            targets = (email, f"guess-{n}@example.test", f"other-{n}@example.test")
            return [_login(attacker, vendor, target, "wrong password!") for target in targets]

    with ThreadPoolExecutor(max_workers=40) as attackers:
        flood = [attackers.submit(attack, n) for n in range(40)]
        with httpx.Client(base_url=live_server, timeout=120, headers=vendor.headers) as shop:
            order = shop.post(
                "/api/v1/orders",
                json={"external_order_id": "SHOP-1", "lines": [{"sku": template["sku"]}]},
            )
        answers = [answer for attempt in flood for answer in attempt.result()]
    assert order.status_code == 201, order.text
    assert len(answers) == 120
    codes = {
        401: {"UNAUTHENTICATED"},
        429: {"LOGIN_LOCKED", "LOGIN_THROTTLED"},
        503: {"LOGINS_BUSY"},
    }
    for answer in answers:
        assert answer.status_code in codes, answer.text
        assert answer.json()["code"] in codes[answer.status_code]
    # The attacked account is locked now; its colleague logs in as ever.
    assert _login(vendor.client, vendor, _user(vendor), PASSWORD).status_code == 201
