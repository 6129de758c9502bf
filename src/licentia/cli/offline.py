"""``licentia admin offline``: the vendor side of file-based activation.

The same services the API (and the License Portal) use: a request file in, an update
file out; receipts and return proofs accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.orm import Session

from licentia.cli.output import Output, fail, guarded
from licentia.cli.runtime import Runtime
from licentia.server.activation import services as activation
from licentia.server.activation.messages import read_request
from licentia.server.db.base import utcnow
from licentia.server.db.engine import run_write
from licentia.server.keys.services import current_signer
from licentia.server.tenancy.services import get_vendor_by_slug

app = typer.Typer(no_args_is_help=True, help="File-based activation (request → update → receipt).")
VendorOpt = Annotated[str, typer.Option("--vendor", help="The vendor's slug.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _exchange(runtime: Runtime, session: Session, slug: str) -> activation.Exchange:
    vendor = get_vendor_by_slug(session, slug)
    return activation.Exchange(
        vendor, lambda: current_signer(session, vendor.id, runtime.master), runtime.master, utcnow()
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        _unreadable(path, error)


def _unreadable(path: Path, error: Exception) -> NoReturn:
    fail(f"cannot read {path}: {error}", "FILE_UNREADABLE", 2)


def _run(runtime: Runtime, work: Callable[[Session], Any]) -> Any:
    """Commit, then raise a refusal: the flag it recorded must survive the error."""
    result = run_write(runtime.db, work)
    if isinstance(result, activation.Refused):
        raise result.error
    return result


@app.command("process")
@guarded
def process(
    vendor: VendorOpt,
    request_file: Annotated[Path, typer.Argument(help="The device's request file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the update file.")],
    as_json: JsonFlag = False,
) -> None:
    """Turn a request file into the update file the device imports."""
    runtime, token = Runtime.load(), _read(request_file)

    def work(session: Session) -> activation.UpdateIssued | activation.Refused:
        ex = _exchange(runtime, session, vendor)
        return activation.process_offline_request(session, ex, read_request(token, vendor, ex.now))

    result: activation.UpdateIssued = _run(runtime, work)
    out.write_text(result.token + "\n", encoding="ascii")
    Output(as_json).record(
        {"update": str(out), "seq": result.seq, "state": result.state}, title="Update file written"
    )


@app.command("receipt")
@guarded
def receipt(
    vendor: VendorOpt,
    receipt_file: Annotated[Path, typer.Argument(help="The device's receipt file.")],
    as_json: JsonFlag = False,
) -> None:
    """Accept a receipt; one that does not match flags the device (exit 5)."""
    runtime, token = Runtime.load(), _read(receipt_file)

    def work(session: Session) -> int | activation.Refused:
        return activation.confirm_receipt(session, _exchange(runtime, session, vendor), token)

    Output(as_json).record({"confirmed": _run(runtime, work)}, title="Receipt accepted")


@app.command("return")
@guarded
def return_proof(
    vendor: VendorOpt,
    proof_file: Annotated[Path, typer.Argument(help="The device's return proof file.")],
    as_json: JsonFlag = False,
) -> None:
    """Accept a return proof: the license becomes available again."""
    runtime, token = Runtime.load(), _read(proof_file)

    def work(session: Session) -> dict[str, str]:
        license_ = activation.return_license(session, _exchange(runtime, session, vendor), token)
        return {"license": license_.id, "state": license_.state}

    Output(as_json).record(_run(runtime, work), title="License returned")
