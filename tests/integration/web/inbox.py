"""A real SMTP server in this process (aiosmtpd) that the application under test
sends its mail to, for as long as a test uses the ``inbox`` fixture."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from licentia.server.mail import SmtpMailer


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def text_of(self, message: Message) -> str:
        """The plain-text part of ``message``."""
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                return payload.decode()
        raise AssertionError("no text part")


def free_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


@pytest.fixture
def inbox(app: FastAPI) -> Iterator[Inbox]:
    """Mail the app sends goes to an SMTP server on a loopback port, into this inbox."""
    received = Inbox()
    port = free_port()
    controller = Controller(received, hostname="127.0.0.1", port=port)
    controller.start()
    before = app.state.mailer
    app.state.mailer = SmtpMailer("127.0.0.1", port, "Licentia <noreply@licentia.test>")
    yield received
    app.state.mailer = before
    controller.stop()
