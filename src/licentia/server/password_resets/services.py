"""A forgotten password: a link mailed to the account's address, then a new password.

The same for a vendor's staff (the console) and a customer's users (the portal), each
at one vendor. Asking for a link answers the same whether the address has an account
or not (the caller shows one sentence either way), so the page reveals no accounts.
A link's token is random (256 bits) and only its SHA-256 is stored; it works once,
until ``expires_at``, at its own vendor only, and asking again spends the older one.
Setting the new password ends every session the user had (a thief who knew the old
password is logged out) and is audited.

Three steps, so that neither the mail server nor argon2 holds a transaction: the link
is made (a write), the mail is rendered and sent (outside), and on the way back the
password is hashed (outside, in a login check slot) before :func:`reset_password`
writes it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import cast

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import LinkInvalidError
from licentia.server.audit.services import record
from licentia.server.customer_users.models import CustomerSession, CustomerUser
from licentia.server.mail import Mail, MailTemplates
from licentia.server.password_resets.models import PasswordReset
from licentia.server.tenancy.branding import branding_of
from licentia.server.tenancy.models import UserSession, Vendor, VendorUser

LINK_INVALID = "this link is unknown, used already or expired; ask for a new one"


class Realm(StrEnum):
    STAFF = "staff"  # a vendor user, at the console
    CUSTOMER = "customer"  # a customer user, at the vendor's portal


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ResetLink:
    """A link to mail; ``token`` goes into the mail and nowhere else (not the log)."""

    realm: Realm
    vendor_id: str
    vendor_slug: str
    email: str
    token: str
    expires_at: datetime
    valid_minutes: int

    def path(self) -> str:
        """The address of the page that sets the password, without the host."""
        return reset_path(self.realm, self.vendor_slug, self.token)


def reset_path(realm: Realm, vendor_slug: str, token: str) -> str:
    if realm is Realm.STAFF:
        return f"/console/reset/{vendor_slug}/{token}"
    return f"/portal/{vendor_slug}/reset/{token}"


def request_reset(
    session: Session,
    realm: Realm,
    *,
    vendor_slug: str,
    email: str,
    ttl: timedelta,
    now: datetime,
    source_ip: str | None = None,
) -> ResetLink | None:
    """A new link for the active account with ``email`` at the vendor, spending any
    older one; None when there is no such account (unknown vendor or address, or a
    disabled user). Audited as ``…password_reset_requested``."""
    found = _account(session, realm, vendor_slug, email)
    if found is None:
        return None
    user, vendor = found
    _spend_links(session, realm, user.id, now)
    token = secrets.token_urlsafe(32)
    expires_at = now + ttl
    session.add(
        PasswordReset(
            vendor_id=vendor.id,
            realm=realm.value,
            user_id=user.id,
            token_hash=_sha256(token),
            expires_at=expires_at,
        )
    )
    kind = _object_type(realm)
    actor = _actor(realm, user.id, vendor.id, source_ip)
    record(session, actor, f"{kind}.password_reset_requested", kind, user.id)
    minutes = max(1, round(ttl.total_seconds() / 60))
    return ResetLink(realm, vendor.id, vendor.slug, user.email, token, expires_at, minutes)


def reset_mail(
    session: Session, templates: MailTemplates, link: ResetLink, *, public_url: str
) -> Mail:
    """The ``password_reset`` message carrying ``link``, in the vendor's brand."""
    vendor = session.scalar(select(Vendor).where(Vendor.slug == link.vendor_slug))
    assert vendor is not None
    brand = branding_of(session, vendor)
    return templates.render(
        "password_reset",
        to=link.email,
        vendor_slug=link.vendor_slug,
        brand=asdict(brand),
        front="console" if link.realm is Realm.STAFF else "portal",
        link=public_url.rstrip("/") + link.path(),
        to_address=link.email,
        minutes=link.valid_minutes,
    )


@dataclass(frozen=True)
class ResetTarget:
    """Whose password a link sets, for its page."""

    email: str
    vendor_slug: str


def reset_target(
    session: Session, realm: Realm, *, vendor_slug: str, token: str, now: datetime
) -> ResetTarget:
    """Raises LinkInvalidError for a token unknown, spent, past its time, of another
    vendor or realm, or of a user disabled since."""
    _reset, user, vendor = _valid_link(session, realm, vendor_slug, token, now, lock=False)
    return ResetTarget(user.email, vendor.slug)


def reset_password(
    session: Session,
    realm: Realm,
    *,
    vendor_slug: str,
    token: str,
    password_hash: str,
    now: datetime,
    source_ip: str | None = None,
) -> str:
    """Set the password (hashed by ``tenancy.staff.new_password_hash``) of the link's
    user, spend the link (and any other of theirs, and a pending invitation link) and
    end every session of the user. Returns the user's e-mail address. Raises
    LinkInvalidError as :func:`reset_target` does; of two uses at once, one wins."""
    reset, user, vendor = _valid_link(session, realm, vendor_slug, token, now, lock=True)
    reset.used_at = now
    _spend_links(session, realm, user.id, now)
    user.password_hash = password_hash
    user.link_token_hash, user.link_expires_at = None, None
    if realm is Realm.STAFF:
        session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    else:
        session.execute(delete(CustomerSession).where(CustomerSession.customer_user_id == user.id))
    kind = _object_type(realm)
    actor = _actor(realm, user.id, vendor.id, source_ip)
    record(session, actor, f"{kind}.password_reset", kind, user.id, after={"sessions_ended": True})
    return user.email


Account = VendorUser | CustomerUser


def _account(
    session: Session, realm: Realm, vendor_slug: str, email: str
) -> tuple[Account, Vendor] | None:
    model: type[VendorUser] | type[CustomerUser] = (
        VendorUser if realm is Realm.STAFF else CustomerUser
    )
    row = session.execute(
        select(model, Vendor)
        .join(Vendor, Vendor.id == model.vendor_id)
        .where(
            Vendor.slug == vendor_slug.strip(),
            model.email == email.strip().lower(),
            model.disabled_at.is_(None),
        )
    ).first()
    return (cast(Account, row[0]), row[1]) if row else None


def _valid_link(
    session: Session, realm: Realm, vendor_slug: str, token: str, now: datetime, *, lock: bool
) -> tuple[PasswordReset, Account, Vendor]:
    query = (
        select(PasswordReset, Vendor)
        .join(Vendor, Vendor.id == PasswordReset.vendor_id)
        .where(
            PasswordReset.token_hash == _sha256(token),
            PasswordReset.realm == realm.value,
            Vendor.slug == vendor_slug,
        )
    )
    row = session.execute(query.with_for_update(of=PasswordReset) if lock else query).first()
    if row is None or row[0].used_at is not None or row[0].expires_at <= now:
        raise LinkInvalidError(LINK_INVALID)
    reset, vendor = row[0], row[1]
    model: type[VendorUser] | type[CustomerUser] = (
        VendorUser if realm is Realm.STAFF else CustomerUser
    )
    user = cast(Account | None, session.get(model, reset.user_id))
    if user is None or user.vendor_id != vendor.id or user.disabled_at is not None:
        raise LinkInvalidError(LINK_INVALID)
    return reset, user, vendor


def _spend_links(session: Session, realm: Realm, user_id: str, now: datetime) -> None:
    session.execute(
        update(PasswordReset)
        .where(
            PasswordReset.realm == realm.value,
            PasswordReset.user_id == user_id,
            PasswordReset.used_at.is_(None),
        )
        .values(used_at=now)
    )


def _object_type(realm: Realm) -> str:
    return "user" if realm is Realm.STAFF else "customer_user"


def _actor(realm: Realm, user_id: str, vendor_id: str, source_ip: str | None) -> Actor:
    kind = ActorKind.USER if realm is Realm.STAFF else ActorKind.CUSTOMER_USER
    return Actor(kind, user_id, vendor_id, source_ip=source_ip)
