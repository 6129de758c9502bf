"""``licentia``: the end user's ``device`` commands, and License Central's commands.

``device`` is imported here (typer, rich and the client SDK only); the server's
commands are named with their module (``licentia.cli.lazy``) and imported when one of
them runs, so ``licentia --help`` and ``licentia device …`` never load the server.
"""

from __future__ import annotations

import typer

from licentia.cli import device
from licentia.cli.lazy import LazyCommand, lazy_group

SERVER = "licentia.cli.server.commands:app"
COMMANDS = {
    "serve": LazyCommand(
        SERVER, "Serve the API (refuses an un-migrated database or an unsafe master key).", "serve"
    ),
    "demo": LazyCommand(
        SERVER,
        "Seed the demo vendor (idempotent) and print its logins and a fresh API key (the "
        "previous demo key is revoked).",
        "demo",
    ),
    "db": LazyCommand(SERVER, "The database schema.", "db"),
    "audit": LazyCommand(SERVER, "The audit log.", "audit"),
    "admin": LazyCommand(
        "licentia.cli.server.admin:app",
        "Vendors, users, API keys, signing keys, offline files, order imports, failed jobs.",
    ),
}

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    no_args_is_help=True,
    help="Licentia License Central.",
    pretty_exceptions_enable=False,
    # Plain help and no completion options: typer's Rich help loads a Markdown parser,
    # and its completion options pydantic, each costing more than typer itself.
    rich_markup_mode=None,
    add_completion=False,
)
app.add_typer(device.app, name="device")


def run() -> None:
    app()
