"""A real ``licentia serve`` process on a throwaway database, for the HTTP benchmarks.

SQLite lives in a temporary folder; PostgreSQL gets a database of its own on the
server named by ``LICENTIA_BENCH_POSTGRES_URL`` (default: the test server,
``LICENTIA_TEST_POSTGRES_URL`` or postgresql://postgres@127.0.0.1:5432/postgres),
dropped afterwards. Servers and databases come from tests/support/servers.py, the
one implementation the end-to-end tests use too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url
from tests.support.servers import (
    Environment,
    Server,
    drop_postgres_database,
    new_environment,
    new_postgres_database,
    postgres_database,
    running_server,
)
from tests.support.servers import SetupError as BenchSetupError

__all__ = [
    "BenchSetupError",
    "Environment",
    "Server",
    "Tenant",
    "drop_kept_database",
    "new_environment",
    "postgres_admin_url",
    "prepare",
    "running_server",
    "throwaway_database",
]


def postgres_admin_url() -> str:
    return os.environ.get(
        "LICENTIA_BENCH_POSTGRES_URL",
        os.environ.get(
            "LICENTIA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )


@contextmanager
def throwaway_database(backend: str, workdir: Path, *, keep: bool = False) -> Iterator[str]:
    """A URL to an empty database that is removed when the block ends, unless ``keep``
    (then ``drop_kept_database`` removes it; SQLite's file is in ``workdir``).

    Raises BenchSetupError if PostgreSQL cannot be reached.
    """
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    if keep:
        yield new_postgres_database(postgres_admin_url(), "licentia_bench_kept")
        return
    with postgres_database(postgres_admin_url(), "licentia_bench") as url:
        yield url


def drop_kept_database(url: str) -> None:
    """Remove a database ``throwaway_database(..., keep=True)`` made."""
    at = make_url(url)
    if at.get_backend_name() == "sqlite":
        Path(at.database or "").unlink(missing_ok=True)
        return
    drop_postgres_database(postgres_admin_url(), at.database or "")


@dataclass(frozen=True)
class Tenant:
    """The vendor the benchmark acts as."""

    slug: str
    api_key: str


def prepare(env: Environment) -> Tenant:
    """Migrate the database and create a vendor with an all-scopes API key."""
    env.cli("db", "upgrade")
    slug = "bench"
    env.cli("admin", "vendor", "create", slug, "--name", "Benchmark vendor")
    issued = env.cli("admin", "api-key", "create", "--vendor", slug, "--name", "bench")
    return Tenant(slug, str(issued["key"]))
