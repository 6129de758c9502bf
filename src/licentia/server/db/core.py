"""The part of a connection that hot code may use (:mod:`licentia.server.db.runner`).

A SQLAlchemy ``Connection`` offers much more than the connections of the event loop's
pool (:mod:`licentia.server.db.loop_statements`) do. Code that runs on either is
typed with :class:`CoreConnection`, so that mypy refuses anything the loop's
connections could not do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable


class CoreResult(Protocol):
    """The rows of a statement, as hot code reads them."""

    def first(self) -> Any: ...
    def one(self) -> Any: ...
    def all(self) -> Sequence[Any]: ...
    def scalar(self) -> Any: ...


class CoreConnection(Protocol):
    """What hot code may use of a connection: Core statements with named parameters,
    and the dialect's name. A SQLAlchemy ``Connection`` is one, and so is a
    connection of the loop's pool."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(
        self, statement: Executable, parameters: Mapping[str, Any] | None = None
    ) -> CoreResult: ...

    def scalar(self, statement: Executable, parameters: Mapping[str, Any] | None = None) -> Any: ...
