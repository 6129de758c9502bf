"""The vendor's side of the file round trip on this machine's database: the services the
API and the License Portal use, in one unit of work each. ``licentia.cli.server.offline``
imports this only when no ``--server`` is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from licentia.cli.server.runtime import Runtime
from licentia.server.activation import services as activation
from licentia.server.activation.messages import read_request
from licentia.server.db.engine import run_write


def process_request(vendor: str, token: str) -> activation.UpdateIssued:
    """The update answering the request ``token``; raises the domain's refusals."""
    runtime = Runtime.load()

    def work(session: Session) -> activation.UpdateIssued | activation.Refused:
        ex = _exchange(runtime, session, vendor)
        return activation.process_offline_request(session, ex, read_request(token, vendor, ex.now))

    result: activation.UpdateIssued = _run(runtime, work)
    return result


def confirm_receipt(vendor: str, token: str) -> int:
    """The sequence the receipt ``token`` confirms; one that does not match flags the
    device (and raises)."""
    runtime = Runtime.load()

    def work(session: Session) -> int | activation.Refused:
        return activation.confirm_receipt(session, _exchange(runtime, session, vendor), token)

    confirmed: int = _run(runtime, work)
    return confirmed


def return_license(vendor: str, token: str) -> dict[str, str]:
    """Accept the return proof ``token``: ``{"license": id, "state": …}``."""
    runtime = Runtime.load()

    def work(session: Session) -> dict[str, str]:
        license_ = activation.return_license(session, _exchange(runtime, session, vendor), token)
        return {"license": license_.id, "state": license_.state}

    returned: dict[str, str] = _run(runtime, work)
    return returned


def _exchange(runtime: Runtime, session: Session, slug: str) -> activation.Exchange:
    return activation.Exchange(session, runtime.master, slug)


def _run(runtime: Runtime, work: Callable[[Session], Any]) -> Any:
    """Commit, then raise a refusal: the flag it recorded must survive the error."""
    result = run_write(runtime.db, work)
    if isinstance(result, activation.Refused):
        raise result.error
    return result
