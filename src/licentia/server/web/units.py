"""What a page handler needs from the application: settings, storage, the master key,
and one way to run a unit of work (read, or write and commit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from fastapi import Request
from sqlalchemy.orm import Session

from licentia.server.activation.messages import MAX_MESSAGE_BYTES
from licentia.server.db.engine import Database, run_write
from licentia.server.db.runner import Runner
from licentia.server.jobs import Worker
from licentia.server.keys.master import MasterKey
from licentia.server.mail import Mailer, MailTemplates
from licentia.server.notifications.mail_jobs import send_now
from licentia.server.settings import Settings
from licentia.server.tenancy.passwords import PasswordChecks

T = TypeVar("T")
# The body of a page that uploads a file (a device's request, receipt or return file,
# a logo): the file and the form around it. Other pages take the default (api/bodies.py).
FORM_WITH_FILE = MAX_MESSAGE_BYTES + 16 * 1024
# Page handlers name the session type through this module, so that they import no
# SQLAlchemy themselves (import-linter: pages-translate).
DbSession = Session


class Forgetful(Protocol):
    """A cache of credentials that can be told to forget them all."""

    def clear(self) -> None: ...


class Backend(Protocol):
    """What ``app.state.services`` offers the pages (the API's Services has it all)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def master(self) -> MasterKey: ...
    @property
    def runner(self) -> Runner: ...
    @property
    def password_checks(self) -> PasswordChecks: ...
    @property
    def credentials(self) -> Forgetful: ...


def backend_of(request: Request) -> Backend:
    backend: Backend = request.app.state.services
    return backend


def mailer_of(request: Request) -> Mailer:
    mailer: Mailer = request.app.state.mailer
    return mailer


def jobs_of(request: Request) -> Worker:
    """This process's worker of durable jobs."""
    worker: Worker = request.app.state.jobs
    return worker


def send_mail_now(request: Request, job_id: str | None, *, retry: bool) -> None:
    """Send the queued mail ``job_id`` at once (``notifications.mail_jobs.send_now``):
    with ``retry`` a failure leaves it to the queue, without it raises MailNotSentError."""
    send_now(jobs_of(request), job_id, retry=retry)


def mail_templates_of(request: Request) -> MailTemplates:
    templates: MailTemplates = request.app.state.mail_templates
    return templates


def forget_credentials(request: Request) -> None:
    """After a revocation: this process stops trusting its cached credentials at once
    (others within ``LICENTIA_CREDENTIAL_CACHE_SECONDS``)."""
    backend_of(request).credentials.clear()


def read(request: Request, work: Callable[[Session], T]) -> T:
    with backend_of(request).db.read() as session:
        return work(session)


def write(request: Request, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one write transaction, committed when it returns."""
    return run_write(backend_of(request).db, work)
