"""Mail: rendered from the vendor's templates, received by a real SMTP server
(aiosmtpd, in this process), or written to a folder in development."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from licentia.server.mail import FolderMailer, MailTemplates, mailer_for
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
