"""Telling the vendor that an endpoint was disabled after failing for about a day.

The delivery job disables an endpoint in the transaction that records the last failed
attempt (``delivery.record_outcome``); after that commit it mails the vendor's admins
(the ``webhook_disabled`` message, in the vendor's templates and brand). Mail is sent
outside any transaction, once, by the worker that disabled the endpoint: a worker that
dies between the two leaves the endpoint disabled without its mail (the console and
the API still show it disabled).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.scopes import Role
from licentia.server.db.engine import Database, run_read
from licentia.server.mail import Mail, Mailer, MailTemplates
from licentia.server.tenancy.branding import branding_of
from licentia.server.tenancy.models import Vendor, VendorUser
from licentia.server.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("licentia.webhooks")


def disabled_mails(
    session: Session, templates: MailTemplates, delivery_id: str, *, public_url: str
) -> list[Mail]:
    """The ``webhook_disabled`` message for each active admin of the vendor whose
    endpoint the failed delivery ``delivery_id`` disabled."""
    delivery = session.get_one(WebhookDelivery, delivery_id)
    endpoint = session.get_one(WebhookEndpoint, delivery.endpoint_id)
    vendor = session.get_one(Vendor, endpoint.vendor_id)
    admins = session.scalars(
        select(VendorUser.email)
        .where(
            VendorUser.vendor_id == vendor.id,
            VendorUser.role == Role.ADMIN.value,
            VendorUser.disabled_at.is_(None),
        )
        .order_by(VendorUser.email)
    ).all()
    brand = asdict(branding_of(session, vendor))
    values = {
        "endpoint": endpoint,
        "attempts": delivery.attempts,
        "last_failure": _last_failure(session, delivery_id),
        "link": f"{public_url.rstrip('/')}/console/webhooks/{endpoint.id}",
    }
    return [
        templates.render(
            "webhook_disabled", to=email, vendor_slug=vendor.slug, brand=brand, **values
        )
        for email in admins
    ]


def _last_failure(session: Session, delivery_id: str) -> str:
    attempt = session.scalars(
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.at.desc(), WebhookAttempt.id.desc())
        .limit(1)
    ).first()
    if attempt is None:
        return "-"
    if attempt.status_code is not None:
        return f"HTTP {attempt.status_code}"
    return attempt.error or "-"


@dataclass
class DisabledNotices:
    """Mails the vendor when the delivery job disables one of its endpoints."""

    db: Database
    mailer: Mailer
    templates: MailTemplates
    public_url: str

    def __call__(self, delivery_id: str) -> None:
        mails = run_read(
            self.db,
            lambda s: disabled_mails(s, self.templates, delivery_id, public_url=self.public_url),
        )
        for mail in mails:
            try:
                self.mailer.send(mail)
            except Exception:  # one unreachable mailbox must not stop the delivery job
                log.exception("mailing a disabled webhook endpoint's notice failed")
