"""Command groups whose sub-commands are imported only when one of them runs.

``licentia --help`` and the end user's ``licentia device …`` must not load License
Central (FastAPI, SQLAlchemy, Alembic…): it takes seconds, and the end user's install
(``licentia[cli]``) does not have it. The server's commands are therefore named here
with their module and a one-line help; the help lists them from that line, and running
one imports its module then.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

# typer ships its own copy of click in some versions: commands and contexts are typed
# through typer's classes here, never through an ``import click`` of another copy.
Command = Any


@dataclass(frozen=True)
class LazyCommand:
    """``target`` is ``module:attribute``, a typer app; ``pick`` names one command of
    that app (None: the whole app is the command group)."""

    target: str
    help: str
    pick: str | None = None

    def load(self, name: str) -> Command:
        """The command, imported now; exits 6 with a message where the server's code
        (the ``server`` extra) is not installed."""
        module_name, attribute = self.target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            typer.echo(f"error (SERVER_NOT_INSTALLED): {server_missing(error)}", err=True)
            raise typer.Exit(6) from error
        app = getattr(module, attribute)
        command = typer.main.get_command(app)
        if self.pick is not None:
            assert isinstance(command, TyperGroup)
            command = command.commands[self.pick]
        command.name = name
        return command

    def placeholder(self, name: str) -> Command:
        """What the help lists: the name and the line of help, nothing imported."""
        return TyperCommand(name, help=self.help, short_help=self.help)


def server_missing(error: ModuleNotFoundError) -> str:
    return (
        f"this command needs License Central's code, and {error.name!r} is not installed: "
        "pip install 'licentia[server]'"
    )


class PlainGroup(TyperGroup):
    """A typer group whose ``--help`` option, left out, is plainly False.

    typer passes a flag left out (None) through its pydantic-based coercion, so every
    group on the way to a sub-command (``licentia``, ``device``) would import pydantic,
    which costs more than typer itself; a False default needs no coercion.
    """

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


class LazyGroup(PlainGroup):
    """A typer group with lazily imported sub-commands; make one with :func:`lazy_group`."""

    lazy: ClassVar[dict[str, LazyCommand]] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in self.lazy:
            return self.lazy[cmd_name].placeholder(cmd_name)
        return found

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Command, list[str]]:
        name = args[0] if args else None
        if name in self.lazy and name not in self.commands:
            self.commands[name] = self.lazy[name].load(name)
        return super().resolve_command(ctx, args)


def lazy_group(commands: dict[str, LazyCommand]) -> type[LazyGroup]:
    """A LazyGroup class for typer's ``cls=`` with ``commands`` imported when run."""
    return type("LazyGroup", (LazyGroup,), {"lazy": dict(commands)})
