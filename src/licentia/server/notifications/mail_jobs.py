"""E-mail as a durable job: a message is rendered where it is asked for, sealed under
the master key (it may carry a ticket code or a reset link), and sent by a job.

``enqueue_mail`` writes the job in the caller's transaction: no mail for a change
that rolled back, no change whose mail is lost. The job's id is the message's
Message-ID, so that a job run again after its node died sends the same message, not
a second one (a folder mailer replaces its file; an SMTP server and mail clients see
one Message-ID). A failed send is retried with backoff for several hours.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from licentia.domain.errors import MailNotSentError
from licentia.domain.ids import new_id
from licentia.server.db.base import utcnow
from licentia.server.jobs import Job, Worker, enqueue
from licentia.server.jobs.registry import Effect
from licentia.server.keys.master import MasterKey
from licentia.server.mail import Mail, Mailer

MAIL_JOB = "mail.send"
_PURPOSE = "mail-job"
log = logging.getLogger("licentia.mail")


# A mail sent at once while a person waits (``send_now``) is due for the other workers
# only this long after: time for its own process to try first, and if that process
# dies before it could, the queue sends it.
FIRST_TRY = timedelta(seconds=30)


def enqueue_mail(
    session: Session,
    master: MasterKey,
    mail: Mail,
    *,
    key: str | None = None,
    sent_here: bool = False,
    vendor_id: str | None = None,
) -> str | None:
    """Ask for ``mail`` to be sent, in the caller's transaction; returns the job's id
    (also the message's id), or None when a job with ``key`` exists already.
    ``sent_here``: the caller will ``send_now`` it once the transaction committed.
    ``vendor_id``: the vendor it is sent for, whose staff see it if it fails for good
    (never its content: the message stays sealed)."""
    job_id = new_id()
    fields = asdict(mail) | {"message_id": job_id}
    sealed = master.encrypt(json.dumps(fields).encode(), purpose=_PURPOSE)
    payload = {"sealed": base64.b64encode(sealed).decode()}
    run_at = utcnow() + FIRST_TRY if sent_here else None
    return enqueue(
        session, MAIL_JOB, payload, key=key, job_id=job_id, run_at=run_at, vendor_id=vendor_id
    )


def opened(master: MasterKey, payload: dict[str, Any]) -> Mail:
    """The message a mail job carries."""
    sealed = base64.b64decode(payload["sealed"])
    return Mail(**json.loads(master.decrypt(sealed, purpose=_PURPOSE)))


def mail_sender(master: MasterKey, mailer: Callable[[], Mailer]) -> Callable[[Job], Effect | None]:
    """The handler of ``mail.send`` jobs: hand the message to ``mailer()`` (the
    application's current mailer). Any error leaves the job to be retried."""

    def send(job: Job) -> Effect | None:
        mailer().send(opened(master, job.payload))
        return None

    return send


def send_now(worker: Worker, job_id: str | None, *, retry: bool) -> None:
    """Send the mail job ``job_id`` at once, while a person waits. With ``retry`` the
    job stays queued when this try fails (the mail follows later); without, the
    failure is final and raises MailNotSentError, for the person to try again."""
    if job_id is None:
        return
    outcome = worker.run_now(job_id, retry=retry)
    if outcome is None or outcome.done or retry:
        return
    raise MailNotSentError(f"the mail server did not take the message: {outcome.error}")
