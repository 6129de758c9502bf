"""What a CLI command needs: settings, the database and the master key, built once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from licentia.domain.audit import ChainBreak
from licentia.domain.errors import ConfigurationError
from licentia.server.audit.services import verify_chains
from licentia.server.db.engine import Database, connect
from licentia.server.db.schema import SchemaStatus, schema_status, upgrade
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
        return connect(self.settings.database_url)

    @cached_property
    def master(self) -> MasterKey:
        return load_master_key(self.settings)

    def status(self) -> SchemaStatus:
        return schema_status(self.db.write_engine, self.settings.database_url)

    def upgrade(self) -> None:
        _ = self.db  # creates the SQLite file's folder
        upgrade(self.settings.database_url)

    def check_ready(self) -> None:
        """Raises ConfigurationError for an unsafe master key or a mismatched schema."""
        _ = self.master
        message = self.status().problem()
        if message is not None:
            raise ConfigurationError(message, code="DATABASE_NOT_MIGRATED")

    def seed_demo(self) -> DemoResult:
        self.check_ready()
        with self.db.transaction() as session:
            return seed_demo(session, self.master)

    def verify_audit(self, vendor_slug: str | None) -> list[ChainBreak]:
        with self.db.read() as session:
            chain = get_vendor_by_slug(session, vendor_slug).id if vendor_slug else None
            return verify_chains(session, chain)
