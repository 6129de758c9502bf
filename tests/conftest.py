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
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from licentia.server.api import create_app
from licentia.server.db.engine import Database, connect
from licentia.server.db.schema import upgrade
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from tests.factories import VendorFactory

BACKENDS = ("sqlite", "postgresql")


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
    admin_url = make_url(_postgres_admin_url()).set(drivername="postgresql+psycopg")
    name = f"licentia_test_{os.getpid()}_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL not reachable at {_postgres_admin_url()}: {error.orig}"
        if os.environ.get("LICENTIA_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message + " (set LICENTIA_TEST_POSTGRES_URL to run these tests)")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
    return Settings(
        database_url=database_url, environment="development", credential_cache_seconds=0
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
