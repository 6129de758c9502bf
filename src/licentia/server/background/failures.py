"""Jobs failed for good, as a vendor's staff see them in the console, and their retry.

A job that works for a vendor carries its id (``jobs.vendor_id``): the issuing of its
large orders, and the mail sent for it (tickets, invitations of its staff and its
customers' users, expiry reminders). Its staff see those and nothing else: the
server's own work (seat sweeps, reminder rounds over every vendor, pruning, renewals,
password reset mails) has no vendor and shows only to the operator (``/metrics``,
``licentia_jobs_failed``). What is shown is the kind, the attempts, the last error and
the times; never the payload (a mail job's message is sealed under the master key,
and it may carry a ticket code or a reset link).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.jobs.models import JobRow
from licentia.server.jobs.queue import failed_jobs_query, retry_failed


def failed_jobs(actor: Actor) -> Select[JobRow]:
    """The actor's vendor's jobs that failed for good (the operator's: the server's
    own). Paginate by ``JobRow.id``."""
    return failed_jobs_query(actor.vendor_id)


def retry_job(session: Session, actor: Actor, job_id: str, now: datetime | None = None) -> str:
    """Queue the failed job again, due at once and with all its attempts, and audit it
    (``job.retried``); returns its kind. Raises NotFoundError if it is not a failed job
    of the actor's vendor (another vendor's is not found either)."""
    row = retry_failed(session, job_id, actor.vendor_id, now or utcnow())
    record(
        session,
        actor,
        "job.retried",
        "job",
        job_id,
        before={"last_error": row.last_error},
        after={"kind": row.kind},
    )
    return row.kind
