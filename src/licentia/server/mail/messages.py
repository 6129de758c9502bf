"""Rendering a message: subject, plain text and HTML from templates.

Each message ``name`` has three templates: ``name.subject.txt``, ``name.txt`` and
``name.html``. A vendor can override any of them by putting a file of the same name in
``<LICENTIA_MAIL_TEMPLATES_DIR>/<vendor slug>/``; the rest come from this package.
Every template gets ``brand`` (the vendor's display name, colours, support contact)
and the message's own values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape

_PACKAGE_TEMPLATES = PackageLoader("licentia.server.mail", "templates")


@dataclass(frozen=True)
class Mail:
    """A rendered message. ``message_id``, when set, is its Message-ID's local part:
    sending it again (a retried job) repeats the same id, so that it is one message.
    ``unsubscribe_url``, on reminders only, becomes its ``List-Unsubscribe`` header."""

    to: str
    subject: str
    text: str
    html: str
    message_id: str | None = None
    unsubscribe_url: str | None = None

    def with_unsubscribe(self, url: str) -> Mail:
        return replace(self, unsubscribe_url=url)


class MailTemplates:
    """The templates of every message, with the vendors' overrides in front."""

    def __init__(self, overrides: Path | None = None) -> None:
        self._overrides = overrides
        self._environments: dict[str, Environment] = {}

    def _environment(self, vendor_slug: str) -> Environment:
        found = self._environments.get(vendor_slug)
        if found is None:
            loaders: list[Any] = [_PACKAGE_TEMPLATES]
            if self._overrides is not None:
                loaders.insert(0, FileSystemLoader(self._overrides / vendor_slug))
            found = Environment(
                loader=ChoiceLoader(loaders),
                autoescape=select_autoescape(enabled_extensions=("html",), default=False),
                keep_trailing_newline=True,
            )
            self._environments[vendor_slug] = found
        return found

    def render(
        self, name: str, *, to: str, vendor_slug: str, brand: Mapping[str, Any], **values: Any
    ) -> Mail:
        """The message ``name`` to ``to``, rendered for the vendor ``vendor_slug``."""
        env = self._environment(vendor_slug)
        context = {"brand": brand, **values}
        subject = env.get_template(f"{name}.subject.txt").render(context)
        return Mail(
            to=to,
            subject=" ".join(subject.split()),
            text=env.get_template(f"{name}.txt").render(context),
            html=env.get_template(f"{name}.html").render(context),
        )
