"""Mail: rendered from the vendor's templates, received by a real SMTP server
(aiosmtpd, in this process), or written to a folder in development; sent as a
durable job (sealed at rest, retried, one Message-ID however often it runs)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import replace
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.jobs import Registry, Worker
from licentia.server.jobs.models import JobRow
from licentia.server.keys.master import MasterKey
from licentia.server.mail import FolderMailer, MailTemplates, SmtpMailer, mailer_for
from licentia.server.notifications.mail_jobs import MAIL_JOB, enqueue_mail, mail_sender
from licentia.server.settings import Settings

BRAND = {
    "display_name": "Acme Tools",
    "primary_colour": "#123456",
    "accent_colour": "#7a1f1f",
    "support_email": "help@acme.test",
    "support_url": None,
}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def ticket_mail(templates: MailTemplates | None = None, slug: str = "acme") -> Any:
    return (templates or MailTemplates()).render(
        "ticket",
        to="buyer@customer.test",
        vendor_slug=slug,
        brand=BRAND,
        ticket_code="ABCDE-FGHJK-MNPQR-STVWX-YZ012",
        portal_url="http://127.0.0.1:8000/portal/acme/",
    )


def test_a_ticket_mail_arrives_by_smtp_with_text_and_html(smtp: tuple[int, Inbox]):
    port, inbox = smtp
    settings = Settings(mail_url=f"smtp://127.0.0.1:{port}", mail_from="Acme <noreply@acme.test>")
    mailer_for(settings).send(ticket_mail())
    [message] = inbox.messages
    assert message["To"] == "buyer@customer.test" and "Acme Tools" in message["Subject"]
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in message.walk()}
    assert b"ABCDE-FGHJK-MNPQR-STVWX-YZ012" in parts["text/plain"]
    assert b"#123456" in parts["text/html"] and b"help@acme.test" in parts["text/html"]


def test_a_vendor_overrides_one_template_and_keeps_the_others(tmp_path: Path):
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "ticket.subject.txt").write_text("Your Acme key is here")
    mail = ticket_mail(MailTemplates(tmp_path))
    assert mail.subject == "Your Acme key is here" and "ABCDE-FGHJK" in mail.text
    assert ticket_mail(MailTemplates(tmp_path), "other").subject.startswith("Your Acme Tools")


def test_development_mail_is_written_to_a_folder(tmp_path: Path):
    FolderMailer(tmp_path, "dev@localhost").send(ticket_mail())
    [written] = list(tmp_path.glob("*.eml"))
    assert b"ABCDE-FGHJK" in written.read_bytes()
    assert isinstance(mailer_for(Settings()), FolderMailer)  # the default needs no server


# --- mail as a durable job ---------------------------------------------------------------


def _mail_worker(database: Database, master: MasterKey, mailer: Any) -> Worker:
    registry = Registry()
    registry.one_off(MAIL_JOB, mail_sender(master, lambda: mailer))
    return Worker(database, registry)


def test_a_queued_mail_is_sealed_and_sent_once_under_its_jobs_message_id(
    smtp: tuple[int, Inbox], database: Database, master: MasterKey
):
    port, inbox = smtp
    worker = _mail_worker(database, master, SmtpMailer("127.0.0.1", port, "noreply@acme.test"))
    job_id = run_write(database, lambda s: enqueue_mail(s, master, ticket_mail()))
    assert job_id is not None
    row = run_read(database, lambda s: s.get(JobRow, job_id))
    assert row is not None and "ABCDE-FGHJK" not in str(row.payload)  # sealed at rest
    outcome = worker.run_now(job_id)
    assert outcome is not None and outcome.done
    assert worker.run_now(job_id) is None  # done: never sent again
    [message] = inbox.messages
    assert message["Message-ID"] == f"<{job_id}@licentia>"


def test_a_mail_the_server_refused_is_retried_and_arrives_once(
    smtp: tuple[int, Inbox], database: Database, master: MasterKey, dead_server_url: str
):
    port, inbox = smtp
    mailer = SmtpMailer("127.0.0.1", int(dead_server_url.rsplit(":", 1)[1]), "noreply@acme.test")
    worker = _mail_worker(database, master, mailer)
    job_id = run_write(database, lambda s: enqueue_mail(s, master, ticket_mail()))
    assert job_id is not None
    failed = worker.run_now(job_id)
    assert failed is not None and not failed.done and failed.again and inbox.messages == []
    mailer.port = port  # the mail server is back
    sent = worker.run_now(job_id)
    assert sent is not None and sent.done
    assert [m["Message-ID"] for m in inbox.messages] == [f"<{job_id}@licentia>"]


def test_a_message_written_again_to_the_folder_stays_one_file(tmp_path: Path):
    mailer = FolderMailer(tmp_path, "dev@localhost")
    mail = replace(ticket_mail(), message_id="job-1")
    mailer.send(mail)
    mailer.send(mail)  # the job ran again after its node died
    [written] = list(tmp_path.glob("*.eml"))
    assert b"<job-1@licentia>" in written.read_bytes()
