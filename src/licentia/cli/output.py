"""Printing for people (Rich tables) or scripts (``--json``), and the one place where
errors become exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from licentia.client import (
    DeviceTrustError,
    LicenseUnusableError,
    LicentiaClientError,
    ServerError,
    TransportError,
)
from licentia.domain.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    LicentiaError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)

EXIT_CODES: tuple[tuple[type[LicentiaError], int], ...] = (
    (ValidationError, 2),
    (AuthenticationError, 3),
    (PermissionDeniedError, 3),
    (NotFoundError, 4),
    (ConflictError, 5),
    (ConfigurationError, 6),
)
EXIT_BROKEN = 7  # a check (audit verify) found a problem
# The client SDK's families (licentia-activate, licentia device …).
CLIENT_EXIT_CODES: tuple[tuple[type[LicentiaClientError], int], ...] = (
    (LicenseUnusableError, 10),
    (DeviceTrustError, 11),
    (ServerError, 13),
    (TransportError, 12),
)


@dataclass
class Output:
    as_json: bool = False

    @property
    def console(self) -> Console:
        return Console()

    def record(self, data: dict[str, Any], title: str | None = None) -> None:
        if self.as_json:
            typer.echo(json.dumps(data, indent=2, default=str))
            return
        table = Table(title=title, show_header=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in data.items():
            table.add_row(key, "" if value is None else str(value))
        self.console.print(table)

    def rows(
        self, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
    ) -> None:
        if self.as_json:
            typer.echo(json.dumps(list(rows), indent=2, default=str))
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        self.console.print(table)


def fail(message: str, code: str, exit_code: int) -> NoReturn:
    # One line whatever the width: logs and scripts grep for the message.
    console = Console(stderr=True, soft_wrap=True)
    console.print(f"[bold red]error[/] ({code}): {escape(message)}")
    raise typer.Exit(exit_code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn a domain error into a message on stderr and its exit code."""
    try:
        yield
    except LicentiaError as error:
        exit_code = next((c for kind, c in EXIT_CODES if isinstance(error, kind)), 1)
        fail(error.message, error.code, exit_code)
    except LicentiaClientError as error:
        exit_code = next((c for kind, c in CLIENT_EXIT_CODES if isinstance(error, kind)), 1)
        fail(error.message, error.server_code or error.code, exit_code)
    except SQLAlchemyError as error:
        reason = error.args[0] if error.args else ""
        fail(f"the database failed: {type(error).__name__}: {reason}", "DATABASE_ERROR", 1)


def guarded(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator form of ``errors_to_exit`` for typer commands."""
    import functools

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with errors_to_exit():
            return function(*args, **kwargs)

    return wrapper


def stderr(message: str) -> None:
    print(message, file=sys.stderr)
