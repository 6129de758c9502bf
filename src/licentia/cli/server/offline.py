"""``licentia admin offline``: the vendor side of file-based activation.

A request file in, an update file out; receipts and return proofs accepted. With
``--server`` the files go to License Central's device endpoints (docs/device-protocol.md),
which need no API key (the device's signature and the ticket are the credentials), so
vendor staff need neither the database nor the server's code: the ``cli`` extra is
enough. Without it the command works on this machine's database
(``licentia.cli.server.exchanges``), imported only then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from licentia.cli.lazy import server_missing
from licentia.cli.output import (
    EXIT_CONFIGURATION,
    EXIT_INVALID,
    EXIT_NETWORK,
    EXIT_SERVER_REFUSED,
    Output,
    fail,
)
from licentia.cli.output import guarded as client_guarded
from licentia.cli.server.remote import problem_in, refusal

app = typer.Typer(no_args_is_help=True, help="File-based activation (request → update → receipt).")
VendorOpt = Annotated[str, typer.Option("--vendor", help="The vendor's slug.")]
ServerOpt = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="LICENTIA_SERVER",
        help="License Central's address: send the file there instead of using the database.",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
JOSE = "application/jose"


def guarded(function: Any) -> Any:
    """Local work raises the domain's errors, remote work command errors: both print."""
    return client_guarded(function, _LazyErrors)


class _LazyErrors:
    """``server_errors`` when the server's code is installed; only command errors when
    it is not (the ``--server`` path never raises the domain's errors)."""

    def __enter__(self) -> None:
        try:
            from licentia.cli.server.errors import server_errors
        except ImportError:
            self._inner = None
            return
        self._inner = server_errors()
        self._inner.__enter__()

    def __exit__(self, *exc_info: Any) -> bool | None:
        if self._inner is None:
            return None
        return self._inner.__exit__(*exc_info)


def _exchanges() -> Any:
    """``licentia.cli.server.exchanges``; a command error where the server's code is not
    installed (then only ``--server`` works)."""
    try:
        from licentia.cli.server import exchanges
    except ModuleNotFoundError as error:
        fail(
            f"{server_missing(error)}, or give --server", "SERVER_NOT_INSTALLED", EXIT_CONFIGURATION
        )
    return exchanges


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {error}", "FILE_UNREADABLE", EXIT_INVALID)


def _send(server: str, vendor: str, endpoint: str, token: str) -> str:
    """POST ``token`` to the device endpoint; the answer's body, or a command error."""
    import httpx

    url = f"{server.rstrip('/')}/api/v1/vendors/{vendor}/devices/{endpoint}"
    try:
        response = httpx.post(url, content=token, headers={"Content-Type": JOSE}, timeout=30)
    except httpx.HTTPError as error:
        fail(
            f"License Central at {server} could not be reached: {error}",
            "NETWORK_ERROR",
            EXIT_NETWORK,
        )
    if response.status_code == 200:
        return response.text.strip()
    raise refusal(response.status_code, problem_in(response), server)


@app.command("process")
@guarded
def process(
    vendor: VendorOpt,
    request_file: Annotated[Path, typer.Argument(help="The device's request file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the update file.")],
    server: ServerOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn a request file into the update file the device imports."""
    token = _read(request_file)
    if server is None:
        issued = _exchanges().process_request(vendor, token)
        update, seq, state = issued.token, issued.seq, issued.state
    else:
        update = _send(server, vendor, "offline", token)
        seq, state = _reported(update)
    out.write_text(update + "\n", encoding="ascii")
    Output(as_json).record({"update": str(out), "seq": seq, "state": state}, "Update file written")


@app.command("receipt")
@guarded
def receipt(
    vendor: VendorOpt,
    receipt_file: Annotated[Path, typer.Argument(help="The device's receipt file.")],
    server: ServerOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Accept a receipt; one that does not match flags the device (exit 5)."""
    token = _read(receipt_file)
    if server is None:
        confirmed: Any = _exchanges().confirm_receipt(vendor, token)
    else:
        confirmed = _answer(_send(server, vendor, "receipts", token)).get("confirmed")
    Output(as_json).record({"confirmed": confirmed}, title="Receipt accepted")


@app.command("return")
@guarded
def return_proof(
    vendor: VendorOpt,
    proof_file: Annotated[Path, typer.Argument(help="The device's return proof file.")],
    server: ServerOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Accept a return proof: the license becomes available again."""
    token = _read(proof_file)
    if server is None:
        returned: dict[str, Any] = _exchanges().return_license(vendor, token)
    else:
        returned = _answer(_send(server, vendor, "returns", token))
    Output(as_json).record(returned, title="License returned")


def _reported(update: str) -> tuple[Any, Any]:
    """The update's ``seq`` and ``state``, to report (the device verifies the update)."""
    from licentia.formats.device import unverified_claims
    from licentia.formats.jws import SignatureInvalidError

    try:
        claims = unverified_claims(update)
    except SignatureInvalidError:
        fail("License Central's answer is not an update file", "SERVER_ERROR", EXIT_SERVER_REFUSED)
    return claims.get("seq"), claims.get("state")


def _answer(text: str) -> dict[str, Any]:
    import json

    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        fail("License Central's answer is not a JSON object", "SERVER_ERROR", EXIT_SERVER_REFUSED)
    return body
