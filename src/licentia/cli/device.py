"""``licentia device …``: the end user's side of device licenses.

Thin: every decision is the client SDK's (``licentia.client.LicenseClient``). Imports
only typer, rich and the client, so that it runs where the server is not installed
(``pip install licentia[cli]``); the client is imported when a command runs, not for
``--help``. The vendor's public keys come from ``--jwks`` (a file the vendor ships with
its application: the trust anchor) or, if none is given, from the server's JWKS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from licentia.cli.lazy import PlainGroup
from licentia.cli.output import (
    EXIT_INVALID,
    EXIT_NETWORK,
    EXIT_NOT_FOUND,
    Output,
    fail,
    guarded,
)

if TYPE_CHECKING:
    from licentia.client import Entitlement, LicenseClient

app = typer.Typer(
    cls=PlainGroup,
    no_args_is_help=True,
    help="Licenses on this device (the end user's side).",
    rich_markup_mode=None,  # see licentia.cli.main
)

Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="LICENTIA_SERVER",
        help="License Central's address, e.g. https://licenses.example.com",
    ),
]
Vendor = Annotated[
    str | None,
    typer.Option("--vendor", envvar="LICENTIA_VENDOR", help="The vendor's slug (required)."),
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
    server: str | None, vendor: str | None, jwks: Path | None, store: Path | None
) -> LicenseClient:
    """The SDK's client for ``vendor``; a command error for a missing or invalid slug or
    keys that cannot be had."""
    from licentia.client import LicenseClient

    slug = require_vendor(vendor)
    try:
        return LicenseClient(server, slug, _public_keys(server, slug, jwks), store_dir=store)
    except ValueError as error:
        fail(f"cannot use the vendor's keys: {error}", "JWKS_INVALID", EXIT_INVALID)


def require_vendor(vendor: str | None) -> str:
    from licentia.client import store_directory

    if not vendor:
        fail(
            "give the vendor's slug with --vendor (or LICENTIA_VENDOR), as in your "
            "vendor's instructions, e.g. --vendor acme",
            "VENDOR_MISSING",
            EXIT_INVALID,
        )
    try:
        store_directory(vendor)  # refuses what cannot be a vendor's slug
    except ValueError:
        fail(f"{vendor!r} is not a vendor slug", "VENDOR_INVALID", EXIT_INVALID)
    return vendor


def _public_keys(server: str | None, vendor: str, jwks: Path | None) -> dict[str, Any]:
    from licentia.client import LicentiaClientError, ServerError, fetch_jwks

    if jwks is not None:
        try:
            keys = json.loads(jwks.read_text())
        except (OSError, ValueError) as error:
            fail(f"cannot read the vendor's keys from {jwks}: {error}", "JWKS_UNREADABLE", 2)
        if not isinstance(keys, dict):
            fail(f"{jwks} is not a JWKS document", "JWKS_INVALID", EXIT_INVALID)
        return keys
    if server is None:
        fail("give --jwks (the vendor's keys) or --server to fetch them", "JWKS_MISSING", 2)
    try:
        return fetch_jwks(server, vendor)
    except ServerError as error:
        if error.status == 404:
            fail(
                f"License Central at {server} knows no vendor {vendor!r}: check --vendor "
                "and --server",
                "VENDOR_NOT_FOUND",
                EXIT_NOT_FOUND,
            )
        raise
    except LicentiaClientError as error:
        fail(f"cannot fetch the vendor's keys: {error.message}", error.code, EXIT_NETWORK)


def license_rows(entitlements: tuple[Entitlement, ...] | list[Entitlement]) -> list[dict[str, Any]]:
    return [
        {
            "license": e.license_id,
            "product": e.product,
            "features": sorted(e.features),
            "valid_until": e.valid_until,
            "lease_until": e.lease_until,
            "refresh_after": e.refresh_after,
            "maintenance_until": e.maintenance_until,
        }
        for e in entitlements
    ]


COLUMNS = ["license", "product", "features", "valid_until", "lease_until", "maintenance_until"]


def check_ticket(ticket: str) -> str:
    """``ticket`` in its canonical form; a command error (exit 2) for a typo."""
    from licentia.client import TicketCodeInvalidError, normalize_ticket_code

    try:
        return normalize_ticket_code(ticket)
    except TicketCodeInvalidError as error:
        fail(error.message, error.code, EXIT_INVALID)


@app.command()
@guarded
def activate(
    ticket: str,
    server: Server = None,
    vendor: Vendor = None,
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Activate a ticket on this device online."""
    code = check_ticket(ticket)
    client = open_client(server, vendor, jwks, store)
    Output(as_json).blocks(
        license_rows(client.activate(code)), COLUMNS, title="Licenses on this device"
    )


@app.command()
@guarded
def status(
    server: Server = None,
    vendor: Vendor = None,
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Show this device's licenses, their limits, and whether a sync is due."""
    state = open_client(server, vendor, jwks, store).status()
    out = Output(as_json)
    problem = state.problem
    summary = {
        "device_id": state.device_id,
        "seq": state.seq,
        "last_sync": state.last_sync,
        "next_refresh": state.next_refresh,
        "refresh_due": state.refresh_due,
        "problem": {"code": problem.code, "message": problem.message} if problem else None,
    }
    if as_json:
        out.record({**summary, "licenses": license_rows(state.licenses)})
        return
    if problem is not None:
        summary["problem"] = f"{problem.code}: {problem.message}"
    out.record(summary, title="This device", own_line=["device_id"])
    # An id folded over lines cannot be copied: each license's id has a line of its own.
    out.blocks(license_rows(state.licenses), COLUMNS, title="Licenses")


@app.command()
@guarded
def sync(
    server: Server = None,
    vendor: Vendor = None,
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
            "added": list(result.added),
            "removed": list(result.removed),
            "updated": list(result.updated),
        },
        title="Sync",
    )


NO_TICKET_WARNING = (
    "this computer holds no license, and the request names no ticket: it can only renew "
    "licenses this computer holds, so the portal will ask for a ticket. Write it again "
    "with --ticket CODE to activate one."
)


@app.command()
@guarded
def request(
    out: Annotated[Path, typer.Argument(help="Where to write the request file.")],
    ticket: Annotated[str | None, typer.Option(help="Activate this ticket.")] = None,
    vendor: Vendor = None,
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a request file for a machine without internet (take it to the portal)."""
    code = check_ticket(ticket) if ticket is not None else None
    client = open_client(None, vendor, jwks, store)
    path = client.create_offline_request(out, code)
    data: dict[str, Any] = {"request": str(path)}
    text = f"Request written to [bold]{path}[/]. Upload it, then import the update you get back."
    if code is None and not client.licenses():
        # Without a ticket a request only renews what the computer holds: from a
        # computer that holds nothing, the portal can only answer "add the ticket".
        data["warning"] = NO_TICKET_WARNING
        text += f"\n[bold yellow]warning[/]: {NO_TICKET_WARNING}"
    Output(as_json).message(data, text)


@app.command("import")
@guarded
def import_update(
    update: Annotated[Path, typer.Argument(help="The update file from the portal.")],
    receipt: Annotated[Path | None, typer.Option(help="Where to write the receipt.")] = None,
    vendor: Vendor = None,
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Import an update file; writes the receipt that confirms it."""
    client = open_client(None, vendor, jwks, store)
    try:
        path = client.import_update(update, receipt)
    except OSError as error:
        fail(f"cannot read {update}: {error}", "FILE_UNREADABLE", EXIT_INVALID)
    Output(as_json).message(
        {"receipt": str(path)},
        f"Update imported. Upload the receipt [bold]{path}[/] to confirm it.",
    )


@app.command("return")
@guarded
def return_license(
    license_id: str,
    out: Annotated[Path | None, typer.Option(help="Offline: write the return proof here.")] = None,
    server: Server = None,
    vendor: Vendor = None,
    jwks: Jwks = None,
    store: Store = None,
    as_json: JsonFlag = False,
) -> None:
    """Give a license back (online, or as a proof file with --out) so it can move."""
    client = open_client(server if out is None else None, vendor, jwks, store)
    if out is None:
        client.return_license(license_id)
        Output(as_json).message(
            {"license": license_id, "returned": True}, f"License {license_id} returned."
        )
    else:
        path = client.create_return_file(license_id, out)
        Output(as_json).message(
            {"license": license_id, "proof": str(path)},
            f"License removed here. Upload [bold]{path}[/] to make it available again.",
        )
