"""Migrations: apply them, and tell whether a database matches this code."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str
    known: bool

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    def problem(self) -> str | None:
        """A message for the operator, or None when the schema matches the code."""
        if self.up_to_date:
            return None
        if self.current is None:
            return "the database is not migrated: run `licentia db upgrade`"
        if not self.known:
            return (
                f"the database is at revision {self.current}, newer than this code knows "
                f"(head {self.head}): upgrade Licentia or point it at another database"
            )
        return (
            f"the database is at revision {self.current}, behind {self.head}: "
            "run `licentia db upgrade`"
        )


def schema_status(engine: Engine, url: str) -> SchemaStatus:
    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_current_head()
    assert head is not None
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    known = current is None or any(rev.revision == current for rev in script.walk_revisions())
    return SchemaStatus(current=current, head=head, known=known)


@dataclass(frozen=True)
class Readiness:
    """Whether a server may take requests: ``code`` is None when it may, else the
    problem code (``DATABASE_UNREACHABLE``, ``DATABASE_NOT_MIGRATED``) and ``message``."""

    code: str | None
    message: str
    schema: str | None = None


def readiness(engine: Engine, url: str) -> Readiness:
    """The database answers and has exactly this code's schema."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        status = schema_status(engine, url)
    except SQLAlchemyError as error:
        return Readiness(
            "DATABASE_UNREACHABLE", f"the database does not answer: {type(error).__name__}"
        )
    message = status.problem()
    if message is not None:
        return Readiness("DATABASE_NOT_MIGRATED", message, status.current)
    return Readiness(None, "ready", status.current)
