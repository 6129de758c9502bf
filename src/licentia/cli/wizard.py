"""``licentia-activate``: activate a license on this device, step by step.

The end user's wizard; like ``licentia device`` it imports only typer, rich and the
client SDK. A ticket code is checked on this machine (its check symbol) before
anything is sent or written, and a mistyped one is asked for again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from licentia.cli.device import (
    COLUMNS,
    Jwks,
    Server,
    Store,
    Vendor,
    license_rows,
    open_client,
    require_vendor,
)
from licentia.cli.output import EXIT_INVALID, Output, fail, guarded

if TYPE_CHECKING:
    from rich.console import Console

    from licentia.client import Entitlement

TICKET_PROMPT = "Ticket code (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX)"
wizard = typer.Typer(
    add_completion=False,
    help="Activate a license on this device, step by step.",
    rich_markup_mode=None,  # see licentia.cli.main
)


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
    vendor: Vendor = None,
    jwks: Jwks = None,
    store: Store = None,
) -> None:
    """Enter a ticket, choose online or file-based activation, see the result."""
    from rich.console import Console
    from rich.prompt import Prompt

    console = Console()
    console.print("[bold]Licentia activation[/]")
    slug = require_vendor(vendor)
    code = ask_ticket(console, ticket)
    mode = mode or Prompt.ask(
        "Activate", choices=["online", "file"], default="online" if server else "file"
    )
    if mode == "online":
        client = open_client(server, slug, jwks, store)
        with console.status("Activating…"):
            entitlements = client.activate(code)
        _show(entitlements)
        return
    _by_file(console, open_client(None, slug, jwks, store), code, request_file, slug)


def ask_ticket(console: Console, given: str | None) -> str:
    """The ticket code in its canonical form: ``given``, or asked for until one has a
    matching check symbol. Exit 2 when the input ends first."""
    from rich.prompt import Prompt

    from licentia.client import TicketCodeInvalidError, normalize_ticket_code

    answer = given
    while True:
        if answer is None:
            try:
                answer = Prompt.ask(TICKET_PROMPT, console=console)
            except EOFError:
                fail("no ticket code was entered", "TICKET_REQUIRED", EXIT_INVALID)
        try:
            return normalize_ticket_code(answer)
        except TicketCodeInvalidError as error:
            console.print(error.message, style="red", markup=False)  # it says to retype
            answer = None


def _by_file(console: Console, client: object, code: str, request_file: Path, vendor: str) -> None:
    from rich.prompt import Confirm, Prompt

    from licentia.client import LicenseClient

    assert isinstance(client, LicenseClient)
    path = client.create_offline_request(request_file, code)
    console.print(
        f"1. Take [bold]{path}[/] to a computer with internet and upload it to the License Portal."
    )
    console.print("2. Bring back the update file you receive.")
    if not Confirm.ask("Do you have the update file now?", default=False):
        console.print(f"Later, run: licentia device import <update file> --vendor {vendor}")
        return
    update = Path(Prompt.ask("Path of the update file"))
    try:
        receipt = client.import_update(update)
    except OSError as error:
        fail(f"cannot read {update}: {error}", "FILE_UNREADABLE", EXIT_INVALID)
    _show(client.licenses())
    console.print(f"3. Upload the receipt [bold]{receipt}[/] to confirm the activation.")


def _show(entitlements: list[Entitlement]) -> None:
    Output().blocks(license_rows(entitlements), COLUMNS, title="Activated: licenses on this device")


def run_activate() -> None:
    """Entry point of ``licentia-activate``."""
    wizard()
