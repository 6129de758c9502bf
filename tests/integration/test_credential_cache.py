"""A server trusts a credential it verified a moment ago, and never for longer than it may.

The shared test app re-reads credentials on every request; these tests build apps
with the cache on, on the same database.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from licentia.server.api import create_app
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database
from licentia.server.keys.master import MasterKey
from licentia.server.settings import Settings
from licentia.server.tenancy.models import ApiKey, UserSession
from tests.factories import VendorFactory, VendorHandle


@pytest.fixture
def cached(settings: Settings, database: Database, master: MasterKey) -> Iterator[TestClient]:
    """An app that trusts a verified credential for 30 s."""
    app = create_app(
        settings.model_copy(update={"credential_cache_seconds": 30.0}),
        database=database,
        master=master,
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def products(client: TestClient, token: str) -> int:
    response = client.get("/api/v1/products", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_a_key_revoked_through_the_server_is_refused_on_the_next_request(
    vendors: VendorFactory, cached: TestClient
) -> None:
    vendor = vendors.create()
    key = vendor.new_api_key(["catalog:read"])
    assert products(cached, key) == 200  # now cached
    key_id = revoke_target(vendor)
    response = cached.delete(f"/api/v1/api-keys/{key_id}", headers=vendor.headers)
    assert response.status_code == 200, response.text
    assert products(cached, key) == 401


def test_a_key_revoked_elsewhere_is_refused_once_the_cache_time_ends(
    vendors: VendorFactory, settings: Settings, database: Database, master: MasterKey
) -> None:
    app = create_app(
        settings.model_copy(update={"credential_cache_seconds": 0.5}),
        database=database,
        master=master,
    )
    vendor = vendors.create()
    key = vendor.new_api_key(["catalog:read"])
    with TestClient(app, raise_server_exceptions=False) as client:
        assert products(client, key) == 200
        key_id = key_id_of(vendor, key)
        with database.transaction() as session:  # as another server process would
            session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow()))
        time.sleep(0.6)
        assert products(client, key) == 401


def test_the_cache_never_outlives_a_session(vendors: VendorFactory, cached: TestClient) -> None:
    vendor = vendors.create()
    token = vendor.user_token("read-only")
    digest = hashlib.sha256(token.encode()).hexdigest()
    # The session must still be valid when the first request reads it: on a busy
    # machine that takes a while, so the session's end moves later until it is.
    for margin in (1, 2, 4, 8, 16, 32):
        ends = utcnow() + timedelta(seconds=margin)
        with vendor.database.transaction() as session:
            session.execute(
                update(UserSession).where(UserSession.token_hash == digest).values(expires_at=ends)
            )
        if products(cached, token) == 200:  # cached until the session's end, not for 30 s
            break
    else:
        pytest.fail("the session was never read before its end")
    while utcnow() <= ends:
        time.sleep(0.05)
    assert products(cached, token) == 401


def revoke_target(vendor: VendorHandle) -> str:
    listed = vendor.ok("GET", "/api-keys")["items"]
    return str(next(item["id"] for item in listed if item["name"] == "test"))


def key_id_of(vendor: VendorHandle, key: str) -> str:
    prefix = key.removeprefix("lic_").split("_", 1)[0]
    listed = vendor.ok("GET", "/api-keys")["items"]
    return str(next(item["id"] for item in listed if item["prefix"] == prefix))
