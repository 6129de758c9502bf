"""``licentia device …`` and the ``licentia-activate`` wizard: the end user's side.

Both are thin: every decision is the client SDK's (``licentia.client.LicenseClient``).
The vendor's public keys come from ``--jwks`` (a file the vendor ships with its
application: the trust anchor) or, if none is given, from the server's JWKS endpoint.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.prompt import Confirm, Prompt
from rich.table import Table

from licentia.cli.output import Output, fail, guarded
from licentia.client import Entitlement, LicenseClient

app = typer.Typer(no_args_is_help=True, help="Licenses on this device (the end user's side).")

Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="LICENTIA_SERVER",
        help="License Central's address, e.g. https://licenses.example.com",
    ),
]
Vendor = Annotated[
    str, typer.Option("--vendor", envvar="LICENTIA_VENDOR", help="The vendor's slug.")
]
Jwks = Annotated[
    Path | None,
    typer.Option("--jwks", envvar="LICENTIA_JWKS", help="The vendor's public keys (JWKS file)."),
]
Store = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar="LICENTIA_STORE",
        help="Store directory (default: the user's data folder).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def open_client(
    server: str | None, vendor: str, jwks: Path | None, store: Path | None
) -> LicenseClient:
    return LicenseClient(server, vendor, _public_keys(server, vendor, jwks), store_dir=store)


def _public_keys(server: str | None, vendor: str, jwks: Path | None) -> dict[str, Any]:
    if jwks is not None:
        try:
            keys = json.loads(jwks.read_text())
        except (OSError, ValueError) as error:
            fail(f"cannot read the vendor's keys from {jwks}: {error}", "JWKS_UNREADABLE", 2)
        return dict(keys)
    if server is None:
        fail("give --jwks (the vendor's keys) or --server to fetch them", "JWKS_MISSING", 2)
    url = f"{server.rstrip('/')}/api/v1/vendors/{vendor}/jwks.json"
    try:
        response = httpx.get(url, timeout=10.0)
        response.raise_for_status()
        return dict(response.json())
    except (httpx.HTTPError, ValueError) as error:
        fail(f"cannot fetch the vendor's keys from {url}: {error}", "NETWORK_ERROR", 12)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def license_rows(entitlements: tuple[Entitlement, ...] | list[Entitlement]) -> list[dict[str, Any]]:
    return [
        {
            "license": e.license_id,
            "product": e.product,
            "features": " ".join(sorted(e.features)),
            "valid_until": _when(e.valid_until),
            "lease_until": _when(e.lease_until),
            "refresh_after": _when(e.refresh_after),
            "maintenance_until": _when(e.maintenance_until),
        }
        for e in entitlements
    ]


COLUMNS = ["license", "product", "features", "valid_until", "lease_until", "maintenance_until"]


@app.command()
@guarded
def activate(
    ticket: str,
    server: Server = None,
    vendor: Vendor = "",
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Activate a ticket on this device online."""
    client = open_client(server, vendor, jwks, store)
    Output(as_json).rows(
        license_rows(client.activate(ticket)), COLUMNS, title="Licenses on this device"
    )


@app.command()
@guarded
def status(
    server: Server = None,
    vendor: Vendor = "",
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Show this device's licenses, their limits, and whether a sync is due."""
    state = open_client(server, vendor, jwks, store).status()
    out = Output(as_json)
    summary = {
        "device_id": state.device_id,
        "seq": state.seq,
        "last_sync": _when(state.last_sync),
        "next_refresh": _when(state.next_refresh),
        "refresh_due": state.refresh_due,
        "problem": f"{state.problem.code}: {state.problem.message}" if state.problem else None,
    }
    if as_json:
        out.record({**summary, "licenses": license_rows(state.licenses)})
        return
    out.record(summary, title="This device")
    out.rows(license_rows(state.licenses), COLUMNS, title="Licenses")


@app.command()
@guarded
def sync(
    server: Server = None,
    vendor: Vendor = "",
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Renew leases and apply the vendor's changes (extensions, withdrawals…)."""
    result = open_client(server, vendor, jwks, store).sync()
    Output(as_json).record(
        {
            "changed": result.changed,
            "seq": result.seq,
            "added": " ".join(result.added),
            "removed": " ".join(result.removed),
            "updated": " ".join(result.updated),
        },
        title="Sync",
    )


@app.command()
@guarded
def request(
    out: Annotated[Path, typer.Argument(help="Where to write the request file.")],
    ticket: Annotated[str | None, typer.Option(help="Activate this ticket.")] = None,
    vendor: Vendor = "",
    jwks: Jwks = None,
    store: Store = None,
) -> None:
    """Write a request file for a machine without internet (take it to the portal)."""
    path = open_client(None, vendor, jwks, store).create_offline_request(out, ticket)
    Console().print(
        f"Request written to [bold]{path}[/]. Upload it, then import the update you get back."
    )


@app.command("import")
@guarded
def import_update(
    update: Annotated[Path, typer.Argument(help="The update file from the portal.")],
    receipt: Annotated[Path | None, typer.Option(help="Where to write the receipt.")] = None,
    vendor: Vendor = "",
    jwks: Jwks = None,
    store: Store = None,
) -> None:
    """Import an update file; writes the receipt that confirms it."""
    path = open_client(None, vendor, jwks, store).import_update(update, receipt)
    Console().print(f"Update imported. Upload the receipt [bold]{path}[/] to confirm it.")


@app.command("return")
@guarded
def return_license(
    license_id: str,
    out: Annotated[Path | None, typer.Option(help="Offline: write the return proof here.")] = None,
    server: Server = None,
    vendor: Vendor = "",
    jwks: Jwks = None,
    store: Store = None,
) -> None:
    """Give a license back (online, or as a proof file with --out) so it can move."""
    client = open_client(server if out is None else None, vendor, jwks, store)
    if out is None:
        client.return_license(license_id)
        Console().print(f"License {license_id} returned.")
    else:
        path = client.create_return_file(license_id, out)
        Console().print(f"License removed here. Upload [bold]{path}[/] to make it available again.")


# --- the wizard ------------------------------------------------------------------------

wizard = typer.Typer(add_completion=False, help="Activate a license on this device, step by step.")


@wizard.command()
@guarded
def run_wizard(
    ticket: Annotated[
        str | None, typer.Option(help="The ticket code (asked for if missing).")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="online or file (asked for if missing).")] = None,
    request_file: Annotated[Path, typer.Option(help="File mode: the request to write.")] = Path(
        "licentia-request.jws"
    ),
    server: Server = None,
    vendor: Vendor = "",
    jwks: Jwks = None,
    store: Store = None,
) -> None:
    """Enter a ticket, choose online or file-based activation, see the result."""
    console = Console()
    console.print("[bold]Licentia activation[/]")
    ticket = ticket or Prompt.ask("Ticket code (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX)")
    mode = mode or Prompt.ask(
        "Activate", choices=["online", "file"], default="online" if server else "file"
    )
    if mode == "online":
        client = open_client(server, vendor, jwks, store)
        with console.status("Activating…"):
            entitlements = client.activate(ticket)
        _show(console, entitlements)
        return
    client = open_client(None, vendor, jwks, store)
    path = client.create_offline_request(request_file, ticket)
    console.print(
        f"1. Take [bold]{path}[/] to a computer with internet and upload it to the License Portal."
    )
    console.print("2. Bring back the update file you receive.")
    if not Confirm.ask("Do you have the update file now?", default=False):
        console.print(f"Later, run: licentia device import <update file> --vendor {vendor}")
        return
    update = Path(Prompt.ask("Path of the update file"))
    receipt = client.import_update(update)
    _show(console, client.licenses())
    console.print(f"3. Upload the receipt [bold]{receipt}[/] to confirm the activation.")


def _show(console: Console, entitlements: list[Entitlement]) -> None:
    table = Table(title="Activated: licenses on this device")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in license_rows(entitlements):
        table.add_row(*(str(row[c]) for c in COLUMNS))
    console.print(table)


def run_activate() -> None:
    """Entry point of ``licentia-activate``."""
    wizard()
