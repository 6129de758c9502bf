"""Shared fixtures: a real database per backend, the app, and vendors to act as.

Every database test runs on SQLite and on PostgreSQL (the ``backend`` parameter).
PostgreSQL comes from ``LICENTIA_TEST_POSTGRES_URL`` (an admin connection); each test
session creates its own database there and drops it at the end. Without a reachable
server those tests skip with a message, unless ``LICENTIA_REQUIRE_POSTGRES=1`` (CI),
where that is a failure. Tests isolate by vendor: each test gets fresh tenants, which
is also what the product promises (no data crosses vendors).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from licentia.server.api import create_app
from licentia.server.db.engine import Database, connect
from licentia.server.db.schema import upgrade
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from tests.factories import VendorFactory
from tests.support.servers import SetupError, postgres_database

BACKENDS = ("sqlite", "postgresql")

# A property holds or not whatever the machine's speed: on two busy cores an example may
# take seconds, so no example is held to a deadline and slow generation is no failure.
hypothesis_settings.register_profile(
    "licentia", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("licentia")


def _postgres_admin_url() -> str:
    return os.environ.get(
        "LICENTIA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if backend == "sqlite":
        path: Path = tmp_path_factory.mktemp("db") / "licentia.db"
        yield f"sqlite:///{path}"
        return
    yield from _postgres_database()


def _postgres_database() -> Iterator[str]:
    stack = ExitStack()
    try:
        url = stack.enter_context(
            postgres_database(_postgres_admin_url(), f"licentia_test_{os.getpid()}")
        )
    except SetupError as error:
        if os.environ.get("LICENTIA_REQUIRE_POSTGRES") == "1":
            pytest.fail(str(error))
        pytest.skip(f"{error} (set LICENTIA_TEST_POSTGRES_URL to run these tests)")
    with stack:
        yield url


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    upgrade(database_url)
    db = connect(database_url, pool_size=30)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def master() -> MasterKey:
    return MasterKey(secrets.token_bytes(32))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # Tests change credentials behind the app's back (expire a session, disable a user),
    # so the shared app re-reads them on every request; the cache has tests of its own.
    # Every test calls this one app from one address, many racing clients at once: the
    # rate limits are off here, and tests/integration/test_rate_limits.py builds apps
    # with limits of its own.
    return Settings(
        database_url=database_url,
        environment="development",
        credential_cache_seconds=0,
        rate_limits=False,
        webhook_poll_seconds=0,  # webhook tests run the delivery job themselves
        # their receivers listen on loopback, by plain http (docs/security.md)
        webhook_allow_http=True,
        webhook_allowed_networks="127.0.0.0/8",
        job_poll_seconds=0,  # job tests run their worker themselves
    )


@pytest.fixture(scope="session")
def app(settings: Settings, database: Database, master: MasterKey) -> FastAPI:
    return create_app(settings, database=database, master=master)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def vendors(database: Database, master: MasterKey, client: TestClient) -> VendorFactory:
    """Make fresh vendors: ``vendors.create()`` → a VendorHandle with an admin API key."""
    return VendorFactory(database, master, client)
