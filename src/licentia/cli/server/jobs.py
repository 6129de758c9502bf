"""``licentia admin jobs failed|retry``: the operator's view of the durable jobs that
failed for good, and their retry. Without ``--vendor``: the server's own jobs (sweeps,
reminder and renewal rounds, pruning, password reset mails), which no vendor sees;
with it, that vendor's (what its admins see on the console's Failed jobs page)."""

from __future__ import annotations

from typing import Annotated

import typer

from licentia.cli.output import Output
from licentia.cli.server.errors import server_guarded as guarded
from licentia.cli.server.runtime import Runtime
from licentia.domain.actors import Actor, operator
from licentia.server.background.failures import failed_jobs, retry_job
from licentia.server.db.pagination import paginate
from licentia.server.jobs.models import JobRow
from licentia.server.tenancy import services as tenancy

app = typer.Typer(no_args_is_help=True, help="Durable jobs that failed for good.")
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
VendorOpt = Annotated[
    str, typer.Option("--vendor", help="A vendor's slug; default: the server's own jobs.")
]
COLUMNS = ["id", "kind", "attempts", "failed_at", "last_error"]


def _actor(runtime: Runtime, vendor: str) -> Actor:
    if not vendor:
        return operator()
    with runtime.db.read() as session:
        return operator(tenancy.get_vendor_by_slug(session, vendor).id)


@app.command("failed")
@guarded
def failed(
    vendor: VendorOpt = "",
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Jobs whose every attempt failed, oldest first: kind, attempts, when, last error."""
    runtime = Runtime.load()
    runtime.check_ready()
    query = failed_jobs(_actor(runtime, vendor))
    with runtime.db.read() as session:
        page = paginate(session, query, JobRow.id, cursor=None, limit=limit)
        rows = [
            {
                "id": job.id,
                "kind": job.kind,
                "attempts": job.attempts,
                "failed_at": job.finished_at,
                "last_error": job.last_error,
            }
            for job in page.items
        ]
    Output(as_json).rows(rows, COLUMNS, title="Failed jobs")


@app.command("retry")
@guarded
def retry(job_id: str, vendor: VendorOpt = "", as_json: JsonFlag = False) -> None:
    """Queue a failed job again, due at once with all its attempts (audited)."""
    runtime = Runtime.load()
    runtime.check_ready()
    actor = _actor(runtime, vendor)
    with runtime.db.transaction() as session:
        kind = retry_job(session, actor, job_id)
    Output(as_json).message(
        {"id": job_id, "kind": kind, "status": "pending"},
        f"Job {job_id} ({kind}) is queued again; a server runs it within seconds.",
    )
