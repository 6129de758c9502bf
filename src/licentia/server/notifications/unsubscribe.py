"""Unsubscribing from reminder mails with a signed link.

Each reminder carries ``<public url>/unsubscribe/<token>``: the vendor, the address and
the topic, signed with a key derived from the master key, so that nobody can stop
another address's mails. The link's page asks to confirm (a mail client or scanner
that opens links must not unsubscribe anyone); confirming records the choice, and no
reminder of that vendor goes to that address again. Transactional mails (password
resets, invitations, ticket codes) have no such link: they are sent because someone
asked for them.
"""

from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import LinkInvalidError
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.notifications.models import MailUnsubscribe
from licentia.server.tenancy.branding import branding_for

REMINDERS = "reminders"
_PURPOSE = "mail-unsubscribe"


@dataclass(frozen=True)
class Subscription:
    vendor_id: str
    email: str
    topic: str


def unsubscribe_token(master: MasterKey, subscription: Subscription) -> str:
    """The signed token of ``subscription``, for a link."""
    fields = [subscription.vendor_id, subscription.email.lower(), subscription.topic]
    body = base64.urlsafe_b64encode(json.dumps(fields).encode()).decode().rstrip("=")
    return f"{body}.{master.keyed_hash(body, purpose=_PURPOSE)}"


def unsubscribe_url(master: MasterKey, public_url: str, subscription: Subscription) -> str:
    return f"{public_url.rstrip('/')}/unsubscribe/{unsubscribe_token(master, subscription)}"


def read_token(master: MasterKey, token: str) -> Subscription:
    """The subscription a token names; raises LinkInvalidError for a token this server
    did not sign."""
    body, _, signature = token.partition(".")
    expected = master.keyed_hash(body, purpose=_PURPOSE)
    if not body or not hmac.compare_digest(signature, expected):
        raise LinkInvalidError("this link is not valid")
    vendor_id, email, topic = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return Subscription(vendor_id, email, topic)


def vendor_name(session: Session, subscription: Subscription) -> str:
    """The display name of the vendor whose mails the link stops; NotFoundError when
    the vendor is gone."""
    return branding_for(session, subscription.vendor_id).display_name


def unsubscribe(session: Session, subscription: Subscription, source_ip: str | None) -> None:
    """Record the choice (once; asking again changes nothing) in the vendor's audit log."""
    row = {
        "vendor_id": subscription.vendor_id,
        "email": subscription.email,
        "topic": subscription.topic,
        "created_at": utcnow(),
    }
    module: Any = postgresql if session.connection().dialect.name == "postgresql" else sqlite
    statement = module.insert(MailUnsubscribe).values(row).on_conflict_do_nothing()
    added = session.execute(statement.returning(MailUnsubscribe.email)).scalar_one_or_none()
    if added is not None:
        actor = Actor(ActorKind.CUSTOMER, None, subscription.vendor_id, source_ip=source_ip)
        after = {"email": subscription.email, "topic": subscription.topic}
        record(session, actor, "mail.unsubscribed", "customer", None, after=after)


def unsubscribed(session: Session, vendor_id: str, emails: set[str], topic: str) -> set[str]:
    """Which of ``emails`` (lower case) asked this vendor for no more ``topic`` mails."""
    if not emails:
        return set()
    return set(
        session.scalars(
            select(MailUnsubscribe.email).where(
                MailUnsubscribe.vendor_id == vendor_id,
                MailUnsubscribe.topic == topic,
                MailUnsubscribe.email.in_(emails),
            )
        )
    )
