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

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def fresh_database(beside: str, workdir: Path) -> Iterator[str]:
    """The URL of a new, empty database on the server of ``beside``."""
    url = make_url(beside)
    if url.get_backend_name() == "sqlite":
        yield f"sqlite:///{workdir / f'fresh-{secrets.token_hex(4)}.db'}"
        return
    name = f"licentia_fresh_{secrets.token_hex(6)}"
    admin = create_engine(url.set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
