"""An endpoint that fails for a day is disabled, and the vendor's admins receive a mail
saying so (text and HTML, in the vendor's brand) through a real SMTP server (aiosmtpd
in this process); the job's clock is moved past each retry's delay."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from licentia.domain.actors import operator
from licentia.domain.webhooks import MAX_ATTEMPTS
from licentia.server.db.base import utcnow
from licentia.server.mail import MailTemplates, SmtpMailer
from licentia.server.tenancy import services as tenancy
from licentia.server.webhooks.delivery import Deliverer
from licentia.server.webhooks.egress import delivery_client
from licentia.server.webhooks.notices import DisabledNotices
from tests.factories import PASSWORD
from tests.support.webhook_receiver import WebhookReceiver


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


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    started = WebhookReceiver(status=503).start()
    yield started
    started.stop()


def test_the_admins_are_mailed_once_when_their_endpoint_is_disabled(
    vendors, receiver, database, master, settings, smtp
):
    port, inbox = smtp
    vendor = vendors.create()
    with database.transaction() as session:
        admin, sales = f"ops@{vendor.slug}.test", f"sales@{vendor.slug}.test"
        for address, role in ((admin, "admin"), (sales, "sales")):
            tenancy.create_user(
                session, operator(vendor.id), vendor.id, email=address, password=PASSWORD, role=role
            )
    body = {"url": receiver.url, "event_types": ["license.suspended"], "description": "ERP"}
    endpoint = vendor.ok("POST", "/webhook-endpoints", json=body)
    receiver.secrets.append(endpoint["secret"])
    template = vendor.template()
    order = vendor.order([{"sku": template["sku"], "quantity": 1}])
    (license_id,) = vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    vendor.ok("POST", f"/licenses/{license_id}/actions/suspend", json={})

    notices = DisabledNotices(
        database,
        SmtpMailer("127.0.0.1", port, "Licentia <licentia@example.test>"),
        MailTemplates(),
        "https://licentia.example",
    )
    ahead = timedelta(0)
    with delivery_client(settings.webhook_targets, timeout=10) as http:
        deliverer = Deliverer(
            database, master, http, clock=lambda: utcnow() + ahead, on_disabled=notices
        )
        for _ in range(MAX_ATTEMPTS + 2):  # two rounds more than it takes: no second mail
            deliverer.deliver_due()
            (delivery,) = vendor.ok("GET", f"/webhook-endpoints/{endpoint['id']}/deliveries")[
                "items"
            ]
            if delivery["next_attempt_at"] is not None:
                ahead = datetime.fromisoformat(delivery["next_attempt_at"]) - utcnow()
    assert delivery["status"] == "failed"
    assert vendor.ok("GET", f"/webhook-endpoints/{endpoint['id']}")["enabled"] is False

    # (the shared database may hold other tests' endpoints, failing too: not theirs)
    ours = [m for m in inbox.messages if m["To"] in (admin, sales)]
    [message] = ours  # the admin, not the sales colleague; once
    assert message["To"] == admin
    assert "disabled" in message["Subject"] and receiver.url in message["Subject"]
    parts = {part.get_content_type(): part.get_payload(decode=True) for part in message.walk()}
    link = f"https://licentia.example/console/webhooks/{endpoint['id']}".encode()
    for kind in ("text/plain", "text/html"):
        assert link in parts[kind] and b"HTTP 503" in parts[kind] and b"ERP" in parts[kind]
