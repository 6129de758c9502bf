"""``licentia serve`` as a newcomer meets it: a real server process on a loopback port.

The first test walks README.md's quickstart with httpx instead of curl; the others
check that the server refuses to start where it would do harm (a database it does not
match, an unsafe master key) and says what to do about it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from jwcrypto import jwk, jws
from sqlalchemy import create_engine, text

from licentia.server.db.schema import alembic_config
from tests.e2e.databases import fresh_database
from tests.e2e.harness.cluster import LICENTIA, Environment, Server, environment, serve

TICKET_CODE = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){4}$")


@dataclass(frozen=True)
class Demo:
    """A server seeded the way ``make run`` seeds it, and the API key it printed."""

    server: Server
    api_key: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.server.url}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
            **kwargs,
        )

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture(scope="module")
def demo(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workdir = tmp_path_factory.mktemp("demo")
    with fresh_database(database_url, workdir) as url:
        env = environment(url, workdir)
        env.cli("db", "upgrade")
        seeded = env.cli("demo")
        with serve(env, 1) as (server,):
            yield Demo(server, seeded["api_key"])


def start_and_fail(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``licentia serve`` expecting it to refuse; a server that starts is killed
    by the timeout and fails the test."""
    return subprocess.run(
        [LICENTIA, "serve", "--host", "127.0.0.1", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- the newcomer's walk -------------------------------------------------------------------


def test_a_newcomer_orders_a_license_and_verifies_its_document_against_the_jwks(demo):
    # Its own product and order: the README walkthrough on the same server makes MYAPP.
    product = demo.ok(
        "POST",
        "/products",
        201,
        json={"code": "NEWAPP", "name": "My App", "features": [{"code": "base"}, {"code": "pro"}]},
    )
    template = demo.ok(
        "POST",
        "/templates",
        201,
        json={
            "sku": "NEWAPP-1Y",
            "name": "My App, one year",
            "product_id": product["id"],
            "features": ["base", "pro"],
            "options": {"validity": {"kind": "days_from_issue", "days": 365}},
        },
    )
    order = demo.ok(
        "POST",
        "/orders",
        201,
        json={"external_order_id": "SHOP-2001", "lines": [{"sku": template["sku"], "quantity": 2}]},
    )
    assert TICKET_CODE.match(order["ticket_code"])

    ticket = demo.ok("GET", f"/tickets/{order['ticket_id']}")
    assert len(ticket["license_ids"]) == 2
    license_id = ticket["license_ids"][0]
    license_ = demo.ok("GET", f"/licenses/{license_id}")
    assert (license_["state"], license_["product_code"]) == ("available", "NEWAPP")

    document = demo.call("GET", f"/licenses/{license_id}/document")
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/jose")
    jwks = httpx.get(f"{demo.server.url}/api/v1/vendors/demo/jwks.json", timeout=30)
    assert jwks.status_code == 200  # public: no Authorization header

    claims = verified_claims(document.text, jwks.text)
    assert (claims["iss"], claims["sub"], claims["product"]) == ("demo", license_id, "NEWAPP")
    assert sorted(claims["features"]) == ["base", "pro"]
    assert abs(claims["exp"] - (time.time() + 365 * 86400)) < 3600


def verified_claims(token: str, jwks_json: str) -> dict[str, Any]:
    """Check the document as docs/formats.md tells any verifier to, with jwcrypto."""
    keys = jwk.JWKSet.from_json(jwks_json)
    document = jws.JWS()
    document.deserialize(token)
    header = document.jose_header
    assert header["typ"] == "licentia-license+jwt"
    key = keys.get_key(header["kid"])
    assert key is not None, "the document's key is not in the vendor's JWKS"
    document.verify(key, alg=header["alg"])
    claims: dict[str, Any] = json.loads(document.payload)
    return claims


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_curl_walkthrough() -> str:
    """The shell blocks of README.md's "Your first license, with curl", in order."""
    section = README.read_text().split("## Your first license, with curl", 1)[1]
    section = section.split("\n## ", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, re.DOTALL))


def test_the_readmes_curl_walkthrough_runs_as_written_and_again(demo, tmp_path):
    """Pasted twice into a terminal (the second time after a break, say), every step
    answers as the first time did, and its files stay out of the folder's root."""
    script = readme_curl_walkthrough()
    assert "curl" in script and "jwcrypto" in script
    (tmp_path / ".venv").symlink_to(sys.prefix)  # the README runs .venv/bin/python
    port = demo.server.url.rsplit(":", 1)[1]
    env = os.environ | {"LICENTIA_API_KEY": demo.api_key, "LICENTIA_PORT": port}
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    # The same SKU, state and signing key; each rendering of the document is signed
    # anew (its iat and jti differ), so the claims printed after the header differ.
    first, again = (output.split("\n{", 1)[0] for output in outputs)
    assert first == again
    assert first.splitlines()[:2] == ["MYAPP-1Y", "available"]
    assert first.splitlines()[2].startswith("verified:")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".venv", "var"]
    assert {p.name for p in (tmp_path / "var" / "readme").iterdir()} == {
        "jwks.json",
        "license.jws",
    }


def test_posting_the_same_order_again_returns_the_same_ticket(demo):
    body = {"external_order_id": "SHOP-2002", "lines": [{"sku": "PHOTOPRO-STD"}]}
    first = demo.ok("POST", "/orders", 201, json=body)
    again = demo.ok("POST", "/orders", 200, json=body)
    assert (again["ticket_id"], again["ticket_code"]) == (first["ticket_id"], first["ticket_code"])


def test_a_good_server_is_alive_and_ready(demo):
    alive = httpx.get(f"{demo.server.url}/healthz", timeout=10)
    ready = httpx.get(f"{demo.server.url}/readyz", timeout=10)
    assert (alive.status_code, alive.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["schema"] == head_revision()


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def test_requests_without_a_valid_key_get_a_problem_answer(demo):
    response = httpx.get(f"{demo.server.url}/api/v1/products", timeout=10)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "UNAUTHENTICATED"


# --- refusing to start ---------------------------------------------------------------------


@pytest.fixture
def fresh_env(database_url: str, tmp_path: Path) -> Iterator[Environment]:
    with fresh_database(database_url, tmp_path) as url:
        yield environment(url, tmp_path)


def test_the_server_refuses_an_unmigrated_database_and_names_the_command(fresh_env):
    refused = start_and_fail(fresh_env.variables())
    assert refused.returncode != 0
    assert "licentia db upgrade" in refused.stderr


def test_the_server_refuses_a_database_newer_than_its_code(fresh_env):
    fresh_env.cli("db", "upgrade")
    engine = create_engine(fresh_env.database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()

    refused = start_and_fail(fresh_env.variables())
    assert refused.returncode != 0
    assert "9999_from_the_future" in refused.stderr
    assert "newer than this code" in refused.stderr


@pytest.fixture
def sqlite_env(tmp_path: Path) -> Environment:
    """The master key is checked before the database is opened: any database will do."""
    return environment(f"sqlite:///{tmp_path / 'licentia.db'}", tmp_path)


def production(env: Environment, master_key: str | None) -> dict[str, str]:
    variables = {**env.variables(), "LICENTIA_ENVIRONMENT": "production"}
    variables.pop("LICENTIA_MASTER_KEY")
    if master_key is not None:
        variables["LICENTIA_MASTER_KEY"] = master_key
    return variables


def test_in_production_the_server_refuses_to_start_without_a_master_key(sqlite_env):
    refused = start_and_fail(production(sqlite_env, None))
    assert refused.returncode != 0
    assert "LICENTIA_MASTER_KEY" in refused.stderr
    assert not (sqlite_env.workdir / "master.key").exists()


@pytest.mark.parametrize("placeholder", ["change-me", "placeholder"])
def test_in_production_the_server_refuses_a_placeholder_master_key(sqlite_env, placeholder):
    refused = start_and_fail(production(sqlite_env, placeholder))
    assert refused.returncode != 0
    assert "placeholder" in refused.stderr
