"""What a server command needs: settings, the database and the master key, built once.

A command that needs the database gets it only once it exists and its schema matches
this code: a missing SQLite file is not created behind the operator's back (a command
run from another folder would otherwise make an empty ``./var/licentia.db`` and fail
on a missing table), and an un-migrated or newer database is refused with what to run.
Only ``licentia db upgrade`` creates and migrates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from licentia.domain.audit import ChainBreak
from licentia.domain.errors import ConfigurationError
from licentia.server.audit.services import verify_chains
from licentia.server.db.engine import Database, connect
from licentia.server.db.schema import SchemaStatus, alembic_config, schema_status, upgrade
from licentia.server.demo.seed import DemoResult, seed_demo
from licentia.server.keys.master import MasterKey, load_master_key
from licentia.server.migrations import models as all_models
from licentia.server.settings import Settings
from licentia.server.tenancy.services import get_vendor_by_slug

# Every table must be mapped before the first flush: foreign keys span contexts.
assert all_models.Base.metadata.tables


@dataclass
class Runtime:
    settings: Settings

    @classmethod
    def load(cls) -> Runtime:
        return cls(Settings())

    @cached_property
    def db(self) -> Database:
        """The database, once it exists and is migrated to this code's schema. Raises
        ConfigurationError (``DATABASE_MISSING``, ``DATABASE_NOT_MIGRATED``) otherwise."""
        database = self._connected
        message = self.status().problem()
        if message is not None:
            raise ConfigurationError(message, code="DATABASE_NOT_MIGRATED")
        return database

    @cached_property
    def master(self) -> MasterKey:
        return load_master_key(self.settings)

    @cached_property
    def _connected(self) -> Database:
        self._ensure_exists()
        return connect(self.settings.database_url)

    def status(self) -> SchemaStatus:
        """The schema's revision next to this code's; raises ConfigurationError
        (``DATABASE_MISSING``) for a SQLite file that does not exist."""
        return schema_status(self._connected.write_engine, self.settings.database_url)

    def missing(self) -> str | None:
        """Why there is no database to look at (a SQLite file that does not exist), or
        None."""
        try:
            self._ensure_exists()
        except ConfigurationError as error:
            return error.message
        return None

    def head(self) -> str | None:
        """The schema revision this code expects."""
        script = ScriptDirectory.from_config(alembic_config(self.settings.database_url))
        return script.get_current_head()

    def upgrade(self) -> None:
        """Create (SQLite) and migrate the database."""
        path = self._sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        upgrade(self.settings.database_url)

    def check_ready(self) -> None:
        """Raises ConfigurationError for an unsafe master key or a database that is
        missing or does not match this code."""
        _ = self.master
        _ = self.db

    def seed_demo(self) -> DemoResult:
        self.check_ready()
        with self.db.transaction() as session:
            return seed_demo(session, self.master)

    def verify_audit(self, vendor_slug: str | None) -> list[ChainBreak]:
        with self.db.read() as session:
            chain = get_vendor_by_slug(session, vendor_slug).id if vendor_slug else None
            return verify_chains(session, chain)

    def _ensure_exists(self) -> None:
        path = self._sqlite_path()
        if path is not None and not path.exists():
            raise ConfigurationError(
                f"there is no database at {path.resolve()} (LICENTIA_DATABASE_URL="
                f"{self.settings.database_url}): run the command where that path is right, "
                "set LICENTIA_DATABASE_URL, or create it with `licentia db upgrade`",
                code="DATABASE_MISSING",
            )

    def _sqlite_path(self) -> Path | None:
        url = make_url(self.settings.database_url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)
