"""Every kind of durable job, one line each. A context offers the handler; this list
is where it is named and, for a periodic kind, given its period."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, run_read
from licentia.server.jobs import Effect, Job, Registry, enqueue
from licentia.server.jobs.queue import prune
from licentia.server.keys.master import MasterKey
from licentia.server.mail import Mailer, MailTemplates
from licentia.server.notifications.mail_jobs import MAIL_JOB, mail_sender
from licentia.server.notifications.reminders import (
    BATCH,
    REMINDERS_JOB,
    ReminderMail,
    due_reminders,
    send_reminders,
)
from licentia.server.orders.issuing import ISSUING_JOB, issue_batch
from licentia.server.seats.services import sweep
from licentia.server.settings import Settings
from licentia.server.subscriptions.services import RENEWAL_BATCH, RENEWALS_JOB, renew_due


@dataclass(frozen=True)
class Resources:
    """What handlers may use. ``mailer`` is asked for at each send: the application's
    mailer (a test may swap it for a server of its own)."""

    settings: Settings
    db: Database
    master: MasterKey
    mailer: Callable[[], Mailer]
    templates: MailTemplates
    clock: Callable[[], datetime] = field(default=utcnow)


def job_kinds(r: Resources) -> Registry:
    """The registry of every kind this server runs."""
    jobs = Registry()
    jobs.one_off(MAIL_JOB, mail_sender(r.master, r.mailer))
    jobs.one_off(ISSUING_JOB, _issue_order_batch(r))
    if r.settings.reminder_seconds > 0:
        jobs.every(REMINDERS_JOB, timedelta(seconds=r.settings.reminder_seconds), _remind(r))
    if r.settings.sweep_seconds > 0:
        jobs.every("seats.sweep", timedelta(seconds=r.settings.sweep_seconds), _sweep_seats(r))
    if r.settings.subscription_renew_seconds > 0:
        period = timedelta(seconds=r.settings.subscription_renew_seconds)
        jobs.every(RENEWALS_JOB, period, _renew_subscriptions(r))
    jobs.every("jobs.prune", timedelta(hours=1), _prune_jobs(r))
    return jobs


def _issue_order_batch(r: Resources) -> Callable[[Job], Effect]:
    """Issue the next batch of a large order's licenses (exactly once: counted from the
    licenses written, in the transaction that ends the job)."""
    batch = r.settings.order_issue_batch
    return lambda job: lambda session: issue_batch(session, job.payload, r.clock(), batch)


def _remind(r: Resources) -> Callable[[Job], Effect]:
    """Send the expiry reminders that are due (once per license and end: noted in
    the transaction that ends the job); a full batch asks for the next at once."""
    mail = ReminderMail(r.master, r.templates, r.settings.public_url)

    def remind(_job: Job) -> Effect:
        now = r.clock()
        due = run_read(r.db, lambda s: due_reminders(s, now))

        def effect(session: Session) -> None:
            send_reminders(session, due, mail)
            if len(due) >= BATCH:
                enqueue(session, REMINDERS_JOB, {"continued": True})

        return effect

    return remind


def _sweep_seats(r: Resources) -> Callable[[Job], Effect]:
    """Record seat leases that expired without a release (idempotent: a swept slot is
    not swept again)."""
    return lambda _job: lambda session: sweep(session, r.clock())


def _renew_subscriptions(r: Resources) -> Callable[[Job], Effect]:
    """Renew the automatic subscriptions that are due, in the transaction that ends
    the job: a node that dies before that commit renewed nothing, and the next run
    finds the same periods due. Each period is renewed once whichever job gets to it
    (``renew_due`` locks the licenses, and a paid period is no longer due); a full
    round asks for the next at once."""

    def renew(_job: Job) -> Effect:
        def effect(session: Session) -> None:
            if renew_due(session, r.clock(), limit=RENEWAL_BATCH) >= RENEWAL_BATCH:
                enqueue(session, RENEWALS_JOB, {"continued": True})

        return effect

    return renew


def _prune_jobs(r: Resources) -> Callable[[Job], Effect]:
    keep = timedelta(days=r.settings.job_retention_days)
    return lambda _job: lambda session: prune(session, r.clock() - keep)
