"""``licentia admin``: vendors, their staff and keys, the vendor's side of offline
files, and failed jobs. Each sub-command group is imported when it runs: ``admin
offline … --server`` works where only the ``cli`` extra is installed."""

from __future__ import annotations

import typer

from licentia.cli.lazy import LazyCommand, lazy_group

TENANTS = "licentia.cli.server.tenants:app"
COMMANDS = {
    "vendor": LazyCommand(TENANTS, "Vendors (tenants).", pick="vendor"),
    "user": LazyCommand(TENANTS, "Vendor staff.", pick="user"),
    "api-key": LazyCommand(TENANTS, "API keys.", pick="api-key"),
    "signing-key": LazyCommand(TENANTS, "Vendor signing keys.", pick="signing-key"),
    "master-key": LazyCommand(
        TENANTS,
        "Print a new random master key (for LICENTIA_MASTER_KEY or the key file).",
        pick="master-key",
    ),
    "import": LazyCommand(
        "licentia.cli.server.imports:app", "Orders from a CSV file (an ERP's export)."
    ),
    "offline": LazyCommand(
        "licentia.cli.server.offline:app", "File-based activation (request → update → receipt)."
    ),
    "jobs": LazyCommand("licentia.cli.server.jobs:app", "Durable jobs that failed for good."),
}
app = typer.Typer(
    cls=lazy_group(COMMANDS),
    no_args_is_help=True,
    help="Vendors, users, API keys, signing keys, offline files, order imports, failed jobs.",
)


@app.callback()
def admin() -> None:
    """Vendors, users, API keys, signing keys, offline files, order imports, failed jobs."""
