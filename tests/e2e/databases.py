"""Empty databases for tests that must start from nothing (migrations, the demo seed).

A fresh database lives beside the session's test database: a new SQLite file, or a
new database on the same PostgreSQL server, dropped when the block ends. Building on
the session's ``database_url`` keeps its rule for a PostgreSQL that cannot be
reached (skip, or fail under ``LICENTIA_REQUIRE_POSTGRES=1``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.servers import postgres_database


@contextmanager
def fresh_database(beside: str, workdir: Path) -> Iterator[str]:
    """The URL of a new, empty database on the server of ``beside``."""
    if make_url(beside).get_backend_name() == "sqlite":
        yield f"sqlite:///{workdir / f'fresh-{secrets.token_hex(4)}.db'}"
        return
    with postgres_database(beside, "licentia_fresh") as url:
        yield url
