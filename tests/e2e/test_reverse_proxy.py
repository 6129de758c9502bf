"""License Central behind a reverse proxy: which proxies are believed, and what the
answers tell browsers when the visitor came over https (docs/operations.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness.cluster import Environment, migrate
from tests.support.servers import Server, new_environment, running_server

# What is checked here is the HTTP front, not the storage: one backend is enough.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

FROM_TLS_PROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}


@pytest.fixture(scope="module")
def env(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    env = new_environment(database_url, tmp_path_factory.mktemp("proxy"))
    migrate(env)
    return env


@pytest.fixture(scope="module")
def server(env: Environment) -> Iterator[Server]:
    with running_server(env) as server:  # trusts 127.0.0.1, the default
        yield server


def test_https_reported_by_a_trusted_proxy_gets_hsts(server: Server) -> None:
    answer = httpx.get(f"{server.url}/console/login", headers=FROM_TLS_PROXY)
    assert answer.status_code == 200
    assert answer.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in httpx.get(f"{server.url}/healthz").headers


def test_an_untrusted_sender_cannot_claim_https(env: Environment, tmp_path: Path) -> None:
    elsewhere = Environment(
        env.database_url, env.master_key, tmp_path, {"LICENTIA_TRUSTED_PROXIES": "192.0.2.1"}
    )
    with running_server(elsewhere) as server:
        answer = httpx.get(f"{server.url}/console/login", headers=FROM_TLS_PROXY)
    assert answer.status_code == 200
    assert "strict-transport-security" not in answer.headers
