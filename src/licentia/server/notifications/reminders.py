"""Reminders that a license is about to end (``license.expiring``, N days before) and
that it has ended (``license.expired``), as webhook events and customer mails.

A periodic job reads which licenses are due (outside any transaction), then, in the
transaction that ends the job, notes each reminder in ``license_notices`` (keyed by
license, kind and end of validity: a reminder already noted is skipped), records its
event (the audit log and the webhook outbox take it from there) and queues one mail
per customer and kind with the licenses that concern them. So each license gets one
reminder of each kind per end of validity, however many nodes run the job and
whenever one dies; extending a license makes a new end and so new reminders.

N is the template option ``expiry_reminder_days`` (14 by default; 0: no
``license.expiring`` for that template's licenses). Licenses that ended more than
EXPIRED_LOOKBACK ago are not reminded of (a server that was down for a week does not
send reminders of old news), nor suspended, withdrawn or replaced ones.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.templates import MAX_REMINDER_DAYS, StoredOptions
from licentia.server.audit.services import record
from licentia.server.catalog.models import Product
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.mail import MailTemplates
from licentia.server.notifications.mail_jobs import enqueue_mail
from licentia.server.notifications.models import LicenseNotice
from licentia.server.notifications.unsubscribe import (
    REMINDERS,
    Subscription,
    unsubscribe_url,
    unsubscribed,
)
from licentia.server.orders.models import Customer
from licentia.server.tenancy.branding import branding_for

EXPIRING, EXPIRED = "license.expiring", "license.expired"
REMINDERS_JOB = "licenses.remind"
BATCH = 500  # reminders noted by one run; a full run asks for another at once
EXPIRED_LOOKBACK = timedelta(days=7)
_STATES = ("available", "activated", "returned")
_PAGE = 1000


@dataclass(frozen=True)
class Due:
    """A reminder to send: ``kind`` of one license, for its end ``valid_until``."""

    license_id: str
    vendor_id: str
    kind: str
    valid_until: datetime
    customer_id: str | None
    ticket_id: str
    product_code: str
    days_left: int

    def event(self) -> dict[str, Any]:
        """The event's data (beside the license's ``id``)."""
        data: dict[str, Any] = {
            "valid_until": self.valid_until.isoformat(),
            "customer_id": self.customer_id,
            "ticket_id": self.ticket_id,
            "product_code": self.product_code,
        }
        return data | ({"days_left": self.days_left} if self.kind == EXPIRING else {})


@dataclass(frozen=True)
class ReminderMail:
    """What the customers' mails are made with."""

    master: MasterKey
    templates: MailTemplates
    public_url: str


def due_reminders(session: Session, now: datetime, limit: int = BATCH) -> list[Due]:
    """Up to ``limit`` reminders not sent yet, ended licenses first."""
    ended = session.execute(
        _not_noted(EXPIRED)
        .where(License.valid_until > now - EXPIRED_LOOKBACK, License.valid_until <= now)
        .order_by(License.valid_until, License.id)
        .limit(limit)
    ).all()
    due = [_due(row, EXPIRED, 0) for row in ended]
    return due + _expiring(session, now, limit - len(due))


def _not_noted(kind: str) -> Select[Any]:
    noted = exists().where(
        LicenseNotice.license_id == License.id,
        LicenseNotice.kind == kind,
        LicenseNotice.valid_until == License.valid_until,
    )
    return select(
        License.id,
        License.vendor_id,
        License.valid_until,
        License.customer_id,
        License.ticket_id,
        License.product_code,
        License.options,
    ).where(License.state.in_(_STATES), ~noted)


def _expiring(session: Session, now: datetime, limit: int) -> list[Due]:
    """Licenses ending within their own N days, read a page at a time in order of
    their end (N differs per template: the query takes the longest N there is)."""
    due: list[Due] = []
    query = _not_noted(EXPIRING).where(
        License.valid_until > now, License.valid_until <= now + timedelta(days=MAX_REMINDER_DAYS)
    )
    after: tuple[datetime, str] | None = None
    while len(due) < limit:
        page = query
        if after is not None:
            page = page.where(
                (License.valid_until > after[0])
                | ((License.valid_until == after[0]) & (License.id > after[1]))
            )
        rows = session.execute(page.order_by(License.valid_until, License.id).limit(_PAGE)).all()
        for row in rows:
            days = StoredOptions(row.options).expiry_reminder_days
            if days and row.valid_until - timedelta(days=days) <= now:
                due.append(_due(row, EXPIRING, (row.valid_until - now).days))
        if len(rows) < _PAGE:
            break
        after = (rows[-1].valid_until, rows[-1].id)
    return due[:limit]


def _due(row: Any, kind: str, days_left: int) -> Due:
    return Due(
        row.id,
        row.vendor_id,
        kind,
        row.valid_until,
        row.customer_id,
        row.ticket_id,
        row.product_code,
        days_left,
    )


def send_reminders(session: Session, due: list[Due], mail: ReminderMail) -> list[Due]:
    """Note, record and mail the reminders not noted yet (in the caller's transaction);
    returns those it sent."""
    sent = [item for item in due if _note(session, item)]
    for item in sent:
        actor = Actor(ActorKind.SYSTEM, None, item.vendor_id)
        record(session, actor, item.kind, "license", item.license_id, after=item.event())
    _mail_customers(session, sent, mail)
    return sent


def _note(session: Session, item: Due) -> bool:
    module: Any = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    statement = module.insert(LicenseNotice).values(
        license_id=item.license_id, kind=item.kind, valid_until=item.valid_until
    )
    noted = statement.on_conflict_do_nothing().returning(LicenseNotice.license_id)
    return session.execute(noted).scalar_one_or_none() is not None


def _mail_customers(session: Session, sent: list[Due], mail: ReminderMail) -> None:
    groups: dict[tuple[str, str, str], list[Due]] = defaultdict(list)
    for item in sent:
        if item.customer_id is not None:
            groups[(item.vendor_id, item.customer_id, item.kind)].append(item)
    if not groups:
        return
    emails = dict(
        session.execute(
            select(Customer.id, Customer.email).where(
                Customer.id.in_({customer for _, customer, _ in groups})
            )
        ).all()
    )
    for (vendor_id, customer_id, kind), items in groups.items():
        address = (emails.get(customer_id) or "").strip().lower()
        if address and not unsubscribed(session, vendor_id, {address}, REMINDERS):
            _queue_mail(session, mail, vendor_id, address, kind, items)


def _queue_mail(
    session: Session, mail: ReminderMail, vendor_id: str, to: str, kind: str, items: list[Due]
) -> None:
    brand = branding_for(session, vendor_id)
    names = _product_names(session, vendor_id, {item.product_code for item in items})
    link = unsubscribe_url(mail.master, mail.public_url, Subscription(vendor_id, to, REMINDERS))
    message = mail.templates.render(
        kind.replace(".", "_"),
        to=to,
        vendor_slug=brand.vendor_slug,
        brand=asdict(brand),
        licenses=[
            {
                "product": names.get(item.product_code, item.product_code),
                "ends": item.valid_until.date().isoformat(),
                "days_left": item.days_left,
            }
            for item in items
        ],
        portal_url=f"{mail.public_url.rstrip('/')}/portal/{brand.vendor_slug}/",
        unsubscribe_url=link,
    )
    enqueue_mail(session, mail.master, message.with_unsubscribe(link), vendor_id=vendor_id)


def _product_names(session: Session, vendor_id: str, codes: set[str]) -> dict[str, str]:
    return dict(
        session.execute(
            select(Product.code, Product.name).where(
                Product.vendor_id == vendor_id, Product.code.in_(codes)
            )
        ).all()
    )
