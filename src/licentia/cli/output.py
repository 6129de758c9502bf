"""Printing for people (Rich tables) or scripts (``--json``), and the exit codes.

Needs only typer and rich (the ``cli`` extra): the end user's commands import it, and
they run where the server is not installed. The exit codes of every ``licentia``
command are listed here and in docs/cli.md; the end user's commands map the client
SDK's error families onto them (``CLIENT_EXIT_CODES``), the server's commands map the
domain's errors (``licentia.cli.server.errors``).

Values go in raw and each output decides how to show them: ``--json`` prints times as
RFC 3339 strings, absent values as ``null`` and lists as arrays; a table prints times
as ``2026-12-03 11:43 UTC``, absent values as ``-`` and lists joined with spaces.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from licentia.client import LicentiaClientError

EXIT_OK = 0
EXIT_FAILED = 1  # anything unexpected, and a database that failed
EXIT_INVALID = 2  # bad input: a mistyped ticket, an unreadable file, a missing option
EXIT_NOT_ALLOWED = 3
EXIT_NOT_FOUND = 4  # an unknown vendor, license, key…
EXIT_CONFLICT = 5
EXIT_CONFIGURATION = 6  # master key, a missing or un-migrated database
EXIT_BROKEN = 7  # a check (db status, audit verify) found a problem
EXIT_ROWS_FAILED = 8  # an import placed what it could, and some rows failed (the report says)
EXIT_LICENSE_UNUSABLE = 10
EXIT_DEVICE_UNTRUSTED = 11
EXIT_NETWORK = 12
EXIT_SERVER_REFUSED = 13


class CommandError(Exception):
    """A command's own refusal: a message for the user, a stable code, an exit code."""

    def __init__(self, message: str, code: str, exit_code: int) -> None:
        super().__init__(message)
        self.message, self.code, self.exit_code = message, code, exit_code


def client_exit_code(error: LicentiaClientError) -> int:
    """The exit code of an error of the client SDK (its families, docs/sdk.md)."""
    from licentia.client import (
        DeviceTrustError,
        LicenseUnusableError,
        ServerError,
        TicketRejectedError,
        TransportError,
    )

    if isinstance(error, TicketRejectedError) and error.status is None:
        return EXIT_INVALID  # found on this machine before anything was sent
    if isinstance(error, ServerError) and error.status == 404:
        return EXIT_NOT_FOUND
    kinds: tuple[tuple[type[LicentiaClientError], int], ...] = (
        (LicenseUnusableError, EXIT_LICENSE_UNUSABLE),
        (DeviceTrustError, EXIT_DEVICE_UNTRUSTED),
        (ServerError, EXIT_SERVER_REFUSED),
        (TransportError, EXIT_NETWORK),
    )
    return next((code for kind, code in kinds if isinstance(error, kind)), EXIT_FAILED)


def as_command_error(error: LicentiaClientError) -> CommandError:
    return CommandError(error.message, error.server_code or error.code, client_exit_code(error))


@dataclass
class Output:
    as_json: bool = False

    @property
    def console(self) -> Console:
        from rich.console import Console

        return Console()

    def record(
        self, data: dict[str, Any], title: str | None = None, own_line: Sequence[str] = ()
    ) -> None:
        """``data`` as a table for people; the keys in ``own_line`` (ids and keys to
        copy) follow it on lines of their own, which a narrow terminal does not fold."""
        if self.as_json:
            typer.echo(to_json(data))
            return
        from rich.table import Table

        table = Table(title=title, show_header=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in data.items():
            if key not in own_line:
                table.add_row(key, for_people(value))
        self.console.print(table)
        for key in own_line:
            self.line(f"{key}: {for_people(data[key])}")

    def line(self, text: str) -> None:
        """``text`` on one line whatever the terminal's width, to copy whole."""
        from rich.console import Console

        Console(soft_wrap=True).print(text, highlight=False, markup=False)

    def blocks(
        self,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str],
        title: str | None = None,
    ) -> None:
        """For people, one block per row: its first column (an id to copy) on a line of
        its own, never folded, and the other ``columns`` in a table below."""
        if self.as_json:
            typer.echo(to_json(list(rows)))
            return
        key, others = columns[0], columns[1:]
        if title:
            self.line(title)
        if not rows:
            self.line("(none)")
        for row in rows:
            self.line(f"{key} {for_people(row[key])}")
            self.record({name: row[name] for name in others})

    def rows(
        self, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
    ) -> None:
        if self.as_json:
            typer.echo(to_json(list(rows)))
            return
        from rich.table import Table

        table = Table(title=title)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(for_people(row.get(c)) for c in columns))
        self.console.print(table)

    def message(self, data: dict[str, Any], text: str) -> None:
        """``data`` for scripts, or ``text`` (Rich markup) for people."""
        if self.as_json:
            typer.echo(to_json(data))
        else:
            self.console.print(text)

    def fail(self, error: CommandError) -> NoReturn:
        if self.as_json:
            body = {"error": {"code": error.code, "message": error.message}}
            typer.echo(to_json(body | {"exit_code": error.exit_code}))
        else:
            from rich.console import Console
            from rich.markup import escape

            # One line whatever the width: logs and scripts grep for the message.
            console = Console(stderr=True, soft_wrap=True)
            console.print(f"[bold red]error[/] ({error.code}): {escape(error.message)}")
        raise typer.Exit(error.exit_code)


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=_json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, tuple | set | frozenset):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    return str(value)


def rfc3339(value: datetime) -> str:
    """``2026-12-03T11:43:00Z``: UTC, seconds, the form every JSON reader parses."""
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def for_people(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, list | tuple | set | frozenset):
        return " ".join(sorted(map(str, value))) if value else "-"
    return str(value)


def fail(message: str, code: str, exit_code: int) -> NoReturn:
    """Stop the command with ``message``; ``guarded`` prints it as the output asks."""
    raise CommandError(message, code, exit_code)


@contextmanager
def client_errors() -> Iterator[None]:
    """Turn the client SDK's errors into command errors (message, code, exit code)."""
    from licentia.client import LicentiaClientError

    try:
        yield
    except LicentiaClientError as error:
        raise as_command_error(error) from error


def guarded(
    function: Callable[..., Any],
    translate: Callable[[], Any] = client_errors,
) -> Callable[..., Any]:
    """Decorator for typer commands: a command error (or an error ``translate`` turns
    into one) is printed, as JSON when the command was given ``--json``, and exits with
    its code."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with translate():
                return function(*args, **kwargs)
        except CommandError as error:
            Output(bool(kwargs.get("as_json"))).fail(error)

    return wrapper


def stderr(message: str) -> None:
    print(message, file=sys.stderr)
