"""Sending a rendered message: by SMTP, or into a folder for development."""

from __future__ import annotations

import logging
import os
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from licentia.domain.errors import ConfigurationError
from licentia.server.mail.messages import Mail
from licentia.server.settings import Settings

log = logging.getLogger("licentia.mail")


class Mailer(Protocol):
    def send(self, mail: Mail) -> None: ...


def _message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, mail.to, mail.subject
    message["Message-ID"] = (
        make_msgid(domain="licentia")
        if mail.message_id is None
        else f"<{mail.message_id}@licentia>"
    )
    if mail.unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


class FolderMailer:
    """Writes each message as an ``.eml`` file into ``folder`` and logs where. A
    message with a ``message_id`` is written under that id, whole or not at all: sent
    again, it replaces itself and stays one file."""

    def __init__(self, folder: Path, sender: str) -> None:
        self.folder, self.sender = folder, sender

    def send(self, mail: Mail) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = mail.message_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"{name}-{mail.to.replace('@', '_at_')}.eml"
        partial = path.with_suffix(".partial")
        partial.write_bytes(bytes(_message(mail, self.sender)))
        os.replace(partial, path)
        log.info("mail to %s (%s) written to %s", mail.to, mail.subject, path)


class SmtpMailer:
    """Sends each message through an SMTP server."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.login = starttls, login

    def send(self, mail: Mail) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=30) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.login is not None:
                smtp.login(*self.login)
            smtp.send_message(_message(mail, self.sender))
        log.info("mail to %s (%s) sent via %s:%d", mail.to, mail.subject, self.host, self.port)


def mailer_for(settings: Settings) -> Mailer:
    """The sender ``LICENTIA_MAIL_URL`` names; raises ConfigurationError for another."""
    url = settings.mail_url
    if url.startswith("file:"):
        return FolderMailer(Path(url.removeprefix("file:")), settings.mail_from)
    parts = urlsplit(url)
    if parts.scheme != "smtp" or not parts.hostname:
        raise ConfigurationError(
            "LICENTIA_MAIL_URL is file:<folder> or smtp://[user:password@]host[:port]"
        )
    login = None
    if parts.username:
        login = (unquote(parts.username), unquote(parts.password or ""))
    return SmtpMailer(
        parts.hostname,
        parts.port or 25,
        settings.mail_from,
        starttls="starttls" in parts.query,
        login=login,
    )
