"""Which address a real ``licentia serve`` counts its rate limits against: the peer's,
unless the peer is a proxy named in ``LICENTIA_TRUSTED_PROXIES``, whose
``X-Forwarded-For`` then names the client (docs/security.md, "Abuse limits")."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness.cluster import migrate
from tests.support.servers import Server, new_environment, running_server

# What is checked here is the HTTP front, not the storage: one backend is enough.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]


@contextmanager
def _server(database_url: str, workdir: Path, **settings: str) -> Iterator[Server]:
    extra = {"LICENTIA_RATE_LIMITS": "true", "LICENTIA_RATE_LIMIT_LOGIN": "2/hour"}
    extra |= {f"LICENTIA_{name.upper()}": value for name, value in settings.items()}
    env = new_environment(database_url, workdir, extra)
    migrate(env)
    with running_server(env) as server:
        yield server


def _logins(server: Server, forwarded_for: str) -> int:
    """A wrong login, at another account each time (no account's own throttle is
    reached); its status."""
    email = f"{secrets.token_hex(4)}@example.com"
    body = {"vendor": "nobody", "email": email, "password": "guess"}
    answer = httpx.post(
        f"{server.url}/api/v1/sessions", json=body, headers={"X-Forwarded-For": forwarded_for}
    )
    if answer.status_code == 429:
        assert answer.json()["code"] == "RATE_LIMITED", answer.text
    return answer.status_code


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    with _server(database_url, tmp_path) as server:
        answers = [_logins(server, f"203.0.113.{n}") for n in range(1, 4)]
        assert answers[:2] == [401, 401]
        assert answers[2] == 429  # the same peer each time, whatever it claims


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(
    database_url: str, tmp_path: Path
) -> None:
    with _server(database_url, tmp_path, trusted_proxies="127.0.0.1") as server:
        assert [_logins(server, f"203.0.113.{n}") for n in range(1, 5)] == [401] * 4
        assert _logins(server, "203.0.113.9") == 401
        assert _logins(server, "203.0.113.9") == 401
        assert _logins(server, "203.0.113.9") == 429  # that client, and only it
        assert _logins(server, "203.0.113.10") == 401
