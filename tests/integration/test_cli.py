"""The operator's ``licentia`` command: migrations, vendors, people, keys, the demo seed.

Each command runs as the operator types it (``licentia ...``, settings from
``LICENTIA_*``), on a database of its own per backend. What a command claims to have
done is checked where a user would notice it: through the HTTP API of an app on the
same database. Errors must come with a message and the documented exit code.
"""

from __future__ import annotations

import gc
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from licentia.cli.main import app as cli
from licentia.server.api import create_app
from licentia.server.db.engine import connect
from licentia.server.keys.master import MasterKey, load_master_key, new_master_key_text
from licentia.server.settings import Settings
from tests.e2e.databases import fresh_database
from tests.integration.web.failed_jobs import failed_job

PASSWORD = "a long enough password"


@dataclass
class Operator:
    """Runs ``licentia`` against one database with one master key."""

    database_url: str
    master_key: str

    def run(self, *args: str, **env: str) -> Result:
        result = CliRunner().invoke(
            cli,
            list(args),
            env={
                "LICENTIA_DATABASE_URL": self.database_url,
                "LICENTIA_MASTER_KEY": self.master_key,
                "LICENTIA_ENVIRONMENT": "development",
                **env,
            },
        )
        gc.collect()  # each in-process command leaves its engine to the cycle collector
        return result

    def json(self, *args: str, **env: str) -> Any:
        result = self.run(*args, "--json", **env)
        assert result.exit_code == 0, f"licentia {' '.join(args)}: {result.output}"
        return json.loads(result.stdout)

    def api(self) -> TestClient:
        """A client of the HTTP API on the same database and master key."""
        settings = Settings(database_url=self.database_url, master_key=self.master_key)
        master: MasterKey = load_master_key(settings)
        return TestClient(create_app(settings, master=master), raise_server_exceptions=False)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def empty(database_url: str, tmp_path: Path) -> Iterator[Operator]:
    with fresh_database(database_url, tmp_path) as url:
        yield Operator(url, new_master_key_text())


@pytest.fixture(scope="module")
def operator(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """A migrated database of this module's own."""
    with fresh_database(database_url, tmp_path_factory.mktemp("cli")) as url:
        ops = Operator(url, new_master_key_text())
        ops.json("db", "upgrade")
        yield ops


def new_vendor(operator: Operator) -> str:
    slug = f"cli-{secrets.token_hex(4)}"
    operator.json("admin", "vendor", "create", slug, "--name", f"Vendor {slug}")
    return slug


# --- the schema ------------------------------------------------------------------------------


def test_db_status_reports_an_unmigrated_database_and_upgrade_migrates_it(empty):
    before = empty.run("db", "status", "--json")
    assert before.exit_code == 7
    status = json.loads(before.stdout)
    assert (status["current"], status["up_to_date"]) == (None, False)
    assert "licentia db upgrade" in status["problem"]

    upgraded = empty.json("db", "upgrade")
    assert upgraded == {"status": "migrated", "schema": status["head"]}
    after = empty.json("db", "status")
    assert after == {
        "current": status["head"],
        "head": status["head"],
        "up_to_date": True,
        "problem": None,
    }


def test_upgrading_twice_changes_nothing(empty):
    first = empty.json("db", "upgrade")
    assert empty.json("db", "upgrade") == first


def test_commands_that_need_the_schema_refuse_an_unmigrated_database(empty):
    result = empty.run("admin", "vendor", "create", "acme", "--name", "Acme")
    assert result.exit_code == 6
    assert "licentia db upgrade" in result.stderr


# --- vendors -------------------------------------------------------------------------------


def test_a_created_vendor_is_listed_and_has_a_published_signing_key(operator):
    slug = f"acme-{secrets.token_hex(3)}"
    created = operator.json("admin", "vendor", "create", slug, "--name", "Acme Software")
    assert (created["slug"], created["name"]) == (slug, "Acme Software")
    listed = {v["slug"]: v for v in operator.json("admin", "vendor", "list")}
    assert listed[slug]["id"] == created["id"]
    with operator.api() as api:
        jwks = api.get(f"/api/v1/vendors/{slug}/jwks.json").json()
    assert [key["kid"] for key in jwks["keys"]] == [created["signing_key"]]


def test_the_vendor_list_for_people_is_a_table(operator):
    slug = new_vendor(operator)
    result = operator.run("admin", "vendor", "list")
    assert result.exit_code == 0
    assert slug in result.stdout
    assert "Vendors" in result.stdout


def test_a_duplicate_vendor_exits_5_with_a_message(operator):
    slug = new_vendor(operator)
    result = operator.run("admin", "vendor", "create", slug, "--name", "Again")
    assert result.exit_code == 5
    assert "already exists" in result.stderr
    assert [v["slug"] for v in operator.json("admin", "vendor", "list")].count(slug) == 1


@pytest.mark.parametrize("slug", ["Upper", "x", "has space", "-leading-dash", "under_score"])
def test_a_bad_slug_exits_2_and_names_the_rule(operator, slug):
    result = operator.run("admin", "vendor", "create", slug, "--name", "Bad")
    assert result.exit_code == 2
    assert "slug" in result.stderr


def test_an_unknown_vendor_exits_4(operator):
    result = operator.run("admin", "api-key", "create", "--vendor", "nobody-here", "--name", "k")
    assert result.exit_code == 4
    assert "nobody-here" in result.stderr
    assert "not found" in result.stderr


# --- users ---------------------------------------------------------------------------------


def test_a_user_created_with_the_password_from_the_environment_can_log_in(operator):
    slug = new_vendor(operator)
    user = operator.json(
        "admin",
        "user",
        "create",
        "--vendor",
        slug,
        "--email",
        "Sales@Example.com",
        "--role",
        "sales",
        LICENTIA_NEW_USER_PASSWORD=PASSWORD,
    )
    assert (user["email"], user["role"]) == ("sales@example.com", "sales")
    login = {"vendor": slug, "email": "sales@example.com", "password": PASSWORD}
    with operator.api() as api:
        session = api.post("/api/v1/sessions", json=login)
        assert session.status_code == 201, session.text
        assert session.json()["role"] == "sales"
        wrong = api.post("/api/v1/sessions", json={**login, "password": "not the password"})
        assert wrong.status_code == 401


def test_a_weak_password_exits_2(operator):
    slug = new_vendor(operator)
    result = operator.run(
        "admin",
        "user",
        "create",
        "--vendor",
        slug,
        "--email",
        "a@example.com",
        LICENTIA_NEW_USER_PASSWORD="short",
    )
    assert result.exit_code == 2
    assert "password" in result.stderr


def test_the_operator_sees_a_locked_out_user_and_unlocks_them(operator):
    slug = new_vendor(operator)
    email = "locked@example.com"
    operator.json(
        "admin",
        "user",
        "create",
        "--vendor",
        slug,
        "--email",
        email,
        LICENTIA_NEW_USER_PASSWORD=PASSWORD,
    )
    login = {"vendor": slug, "email": email, "password": PASSWORD}
    with operator.api() as api:
        for _ in range(5):
            wrong = api.post("/api/v1/sessions", json={**login, "password": "not the password"})
            assert wrong.status_code == 401
        assert api.post("/api/v1/sessions", json=login).json()["code"] == "LOGIN_LOCKED"
        [row] = operator.json("admin", "user", "locks", "--vendor", slug)
        assert (row["email"], row["failures"], row["locked"]) == (email, 5, True)
        assert row["locked_until"]
        assert operator.json("admin", "user", "locks", "--vendor", slug, "--customers") == []

        unlocked = operator.run("admin", "user", "unlock", "--vendor", slug, email)
        assert unlocked.exit_code == 0 and f"{email} may log in again" in unlocked.stdout
        assert api.post("/api/v1/sessions", json=login).status_code == 201
    assert operator.json("admin", "user", "locks", "--vendor", slug) == []
    unknown = operator.run("admin", "user", "unlock", "--vendor", slug, "nobody@example.com")
    assert unknown.exit_code == 4 and "nobody@example.com" in unknown.stderr


# --- API keys ------------------------------------------------------------------------------


def test_an_api_key_is_shown_once_works_is_listed_without_its_secret_and_can_be_revoked(
    operator,
):
    slug = new_vendor(operator)
    issued = operator.json(
        "admin", "api-key", "create", "--vendor", slug, "--name", "erp", "--scope", "orders:read"
    )
    assert issued["key"].startswith("lic_")
    assert issued["scopes"] == ["orders:read"]

    with operator.api() as api:
        assert api.get("/api/v1/orders", headers=bearer(issued["key"])).status_code == 200
        assert api.get("/api/v1/products", headers=bearer(issued["key"])).status_code == 403

        (listed,) = operator.json("admin", "api-key", "list", "--vendor", slug)
        assert (listed["id"], listed["name"], listed["revoked_at"]) == (issued["id"], "erp", None)
        assert listed["last_used_at"] is not None
        assert issued["key"] not in json.dumps(listed)
        assert issued["key"].startswith(f"lic_{listed['prefix']}_")

        revoked = operator.json("admin", "api-key", "revoke", "--vendor", slug, issued["id"])
        assert revoked["revoked_at"] is not None
        # the server process learns of a revocation made elsewhere when its cache entry ends
        deadline = time.monotonic() + Settings().credential_cache_seconds + 1
        while api.get("/api/v1/orders", headers=bearer(issued["key"])).status_code != 401:
            assert time.monotonic() < deadline, "a revoked key still works"
            time.sleep(0.1)


def test_an_unknown_scope_exits_2(operator):
    slug = new_vendor(operator)
    result = operator.run(
        "admin", "api-key", "create", "--vendor", slug, "--name", "k", "--scope", "root:all"
    )
    assert result.exit_code == 2
    assert "root:all" in result.stderr


def test_revoking_an_unknown_key_exits_4(operator):
    slug = new_vendor(operator)
    result = operator.run("admin", "api-key", "revoke", "--vendor", slug, "no-such-key")
    assert result.exit_code == 4


# --- signing keys --------------------------------------------------------------------------


def test_rotation_makes_a_new_current_key_and_retiring_the_old_one_unpublishes_it(operator):
    slug = new_vendor(operator)
    (first,) = operator.json("admin", "signing-key", "list", "--vendor", slug)
    assert first["status"] == "current"

    rotated = operator.json("admin", "signing-key", "rotate", "--vendor", slug)
    statuses = {
        k["kid"]: k["status"]
        for k in operator.json("admin", "signing-key", "list", "--vendor", slug)
    }
    assert statuses == {first["kid"]: "previous", rotated["kid"]: "current"}
    assert published_kids(operator, slug) == {first["kid"], rotated["kid"]}

    retired = operator.json("admin", "signing-key", "retire", "--vendor", slug, first["kid"])
    assert retired == {"kid": first["kid"], "status": "retired"}
    assert published_kids(operator, slug) == {rotated["kid"]}


def published_kids(operator: Operator, slug: str) -> set[str]:
    with operator.api() as api:
        return {key["kid"] for key in api.get(f"/api/v1/vendors/{slug}/jwks.json").json()["keys"]}


def test_the_current_signing_key_cannot_be_retired(operator):
    slug = new_vendor(operator)
    (current,) = operator.json("admin", "signing-key", "list", "--vendor", slug)
    result = operator.run("admin", "signing-key", "retire", "--vendor", slug, current["kid"])
    assert result.exit_code == 5
    assert "rotate first" in result.stderr


# --- the demo ------------------------------------------------------------------------------


def test_the_demo_seed_can_run_twice_without_duplicating_anything(empty):
    empty.json("db", "upgrade")
    first = empty.json("demo")
    second = empty.json("demo")

    assert first["vendor"] == second["vendor"] == "demo"
    assert first["ticket_code"] == second["ticket_code"]
    assert [v["slug"] for v in empty.json("admin", "vendor", "list")] == ["demo"]
    with empty.api() as api:
        products = api.get("/api/v1/products", headers=bearer(second["api_key"])).json()["items"]
        assert [p["code"] for p in products] == ["PHOTOPRO"]
        # One full-scope demo key at a time: seeding again revoked the first.
        assert api.get("/api/v1/products", headers=bearer(first["api_key"])).status_code == 401
        keys = api.get("/api/v1/api-keys", headers=bearer(second["api_key"])).json()["items"]
        assert [k["revoked_at"] is None for k in keys] == [False, True]
        orders = api.get("/api/v1/orders", headers=bearer(second["api_key"])).json()["items"]
        assert len(orders) == 1
        ticket = api.get(
            f"/api/v1/tickets/{orders[0]['ticket_id']}", headers=bearer(second["api_key"])
        )
        assert len(ticket.json()["license_ids"]) == 3
        users = demo_user_emails(api, second["api_key"])
    assert users == {
        "admin@demo.example",
        "sales@demo.example",
        "support@demo.example",
        "auditor@demo.example",
    }


def demo_user_emails(api: TestClient, key: str) -> set[str]:
    """The demo's people, seen as the people who acted in its audit log."""
    events = api.get(
        "/api/v1/audit-events", params={"action": "user.created", "limit": 200}, headers=bearer(key)
    ).json()["items"]
    return {e["after"]["email"] for e in events}


def test_the_demo_prints_its_logins_and_a_line_to_paste_the_api_key(empty):
    empty.json("db", "upgrade")
    result = empty.run("demo")
    assert result.exit_code == 0
    assert "demo-password-123" in result.stdout
    (line,) = [x for x in result.stdout.splitlines() if "export LICENTIA_API_KEY=" in x]
    assert line.strip().startswith("export LICENTIA_API_KEY=lic_")
    key = line.strip().removeprefix("export LICENTIA_API_KEY=")
    assert f"api_key: {key}" in result.stdout.splitlines()  # whole, not folded by the table


# --- the audit log and the master key ---------------------------------------------------------


def test_audit_verify_finds_the_chains_the_commands_wrote_intact(operator):
    new_vendor(operator)
    assert operator.json("audit", "verify") == {"intact": True, "breaks": []}


def test_the_printed_master_key_is_one_the_server_accepts(tmp_path):
    result = CliRunner().invoke(cli, ["admin", "master-key"])
    assert result.exit_code == 0
    settings = Settings(
        environment="production", master_key=result.stdout.strip(), master_key_file=tmp_path / "k"
    )
    key = load_master_key(settings)
    assert key.decrypt(key.encrypt(b"x", purpose="p"), purpose="p") == b"x"


# --- failed jobs -----------------------------------------------------------------------------


def test_the_operator_lists_and_retries_failed_jobs_the_servers_own_or_a_vendors(operator):
    slug = new_vendor(operator)
    vendor_id = next(v["id"] for v in operator.json("admin", "vendor", "list") if v["slug"] == slug)
    db = connect(operator.database_url)
    try:
        servers = failed_job(db, None, "seats.sweep", "OperationalError: the database went away")
        vendors = failed_job(db, vendor_id)
    finally:
        db.dispose()
    own = {job["id"]: job for job in operator.json("admin", "jobs", "failed")}
    assert servers in own and vendors not in own
    assert own[servers]["kind"] == "seats.sweep" and own[servers]["attempts"] == 12
    assert "went away" in own[servers]["last_error"]
    theirs = operator.json("admin", "jobs", "failed", "--vendor", slug)
    assert [job["id"] for job in theirs] == [vendors]
    refused = operator.run("admin", "jobs", "retry", vendors)  # not one of the server's
    assert refused.exit_code == 4
    retried = operator.json("admin", "jobs", "retry", vendors, "--vendor", slug)
    assert retried == {"id": vendors, "kind": "mail.send", "status": "pending"}
    assert operator.json("admin", "jobs", "failed", "--vendor", slug) == []
    assert operator.json("admin", "jobs", "retry", servers)["status"] == "pending"
