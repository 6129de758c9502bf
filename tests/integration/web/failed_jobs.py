"""Jobs that failed for good, made straight in the job table as the worker leaves them
(the page tests' servers run no jobs)."""

from __future__ import annotations

from sqlalchemy import update

from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database
from licentia.server.jobs import enqueue
from licentia.server.jobs.models import JobRow

SMTP_DOWN = "MailNotSentError: the mail server at smtp.example:25 refused the connection"


def failed_job(
    database: Database, vendor_id: str | None, kind: str = "mail.send", error: str = SMTP_DOWN
) -> str:
    """A job of ``kind`` for ``vendor_id`` whose 12 attempts all failed; its id."""
    with database.transaction() as session:
        job_id = enqueue(session, kind, {"sealed": "c2VhbGVk"}, vendor_id=vendor_id)
        assert job_id is not None
        session.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(status="failed", attempts=12, last_error=error, finished_at=utcnow())
        )
    return job_id
