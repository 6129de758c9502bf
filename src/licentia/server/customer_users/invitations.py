"""A customer admin invites colleagues: an account without a password and a mailed
link (valid 7 days, once) where the colleague sets one; and removes a colleague who
has left."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.emails import check_address
from licentia.domain.errors import NotFoundError, PermissionDeniedError
from licentia.server.audit.services import record
from licentia.server.customer_users.models import (
    CustomerSession,
    CustomerUser,
    LicenseAssignment,
)
from licentia.server.customer_users.services import (
    CustomerIdentity,
    CustomerRole,
    NewCustomerUser,
    create_customer_user,
)
from licentia.server.db.base import utcnow
from licentia.server.mail import Mail, MailTemplates
from licentia.server.orders.models import Customer
from licentia.server.tenancy.branding import branding_for
from licentia.server.tenancy.passwords import check_password_rule, hash_password


def actor_of(identity: CustomerIdentity) -> Actor:
    """The customer user as the audit log records them."""
    return Actor(ActorKind.CUSTOMER_USER, identity.user_id, identity.vendor_id)


def invite_colleague(session: Session, inviter: CustomerIdentity, *, email: str) -> NewCustomerUser:
    """A colleague of the inviter's customer, without a password, and the link token to
    mail them. Raises PermissionDeniedError unless the inviter is the customer admin,
    ValidationError (``EMAIL_INVALID``), AlreadyExistsError (e-mail taken)."""
    if not inviter.is_admin:
        raise PermissionDeniedError("only the customer admin invites colleagues")
    address = check_address(email, field="email")
    return create_customer_user(
        session, actor_of(inviter), inviter.customer_id, email=address, role=CustomerRole.MEMBER
    )


def invitation_mail(
    session: Session,
    templates: MailTemplates,
    inviter: CustomerIdentity,
    invited: NewCustomerUser,
    *,
    public_url: str,
) -> Mail:
    """The invitation to ``invited``, in the vendor's brand, with the link to follow."""
    assert invited.link_token is not None
    brand = branding_for(session, inviter.vendor_id)
    customer = session.get(Customer, inviter.customer_id)
    link = f"{public_url.rstrip('/')}/portal/{brand.vendor_slug}/welcome/{invited.link_token}"
    return templates.render(
        "invitation",
        to=invited.user.email,
        vendor_slug=brand.vendor_slug,
        brand=asdict(brand),
        inviter=inviter.email,
        customer_name=customer.name if customer else "",
        link=link,
    )


def invited_user(session: Session, vendor_id: str, token: str, now: datetime) -> CustomerUser:
    """The user a link was mailed to; NotFoundError (``LINK_INVALID``) for an unknown,
    used or expired link."""
    user = session.scalar(
        select(CustomerUser).where(
            CustomerUser.vendor_id == vendor_id,
            CustomerUser.link_token_hash == hashlib.sha256(token.encode()).hexdigest(),
        )
    )
    expires = user.link_expires_at if user else None
    if user is None or expires is None or expires <= now or user.disabled_at is not None:
        raise NotFoundError("link", "followed", code="LINK_INVALID")
    return user


def set_password_by_link(
    session: Session, vendor_id: str, token: str, password: str, now: datetime
) -> CustomerUser:
    """Set the password of the user the link names and spend the link. Raises
    NotFoundError (``LINK_INVALID``), ValidationError (the password rule)."""
    user = invited_user(session, vendor_id, token, now)
    check_password_rule(password)
    user.password_hash = hash_password(password)
    user.link_token_hash, user.link_expires_at = None, None
    actor = Actor(ActorKind.CUSTOMER_USER, user.id, vendor_id)
    record(session, actor, "customer_user.password_set", "customer_user", user.id)
    return user


def removable_colleague(session: Session, admin: CustomerIdentity, user_id: str) -> CustomerUser:
    """The colleague :func:`remove_colleague` would remove (to ask the admin first);
    raises as it does."""
    return _colleague(session, admin, user_id, lock=False)


def _colleague(
    session: Session, admin: CustomerIdentity, user_id: str, *, lock: bool
) -> CustomerUser:
    if not admin.is_admin:
        raise PermissionDeniedError("only the customer admin removes colleagues")
    query = select(CustomerUser).where(
        CustomerUser.id == user_id,
        CustomerUser.vendor_id == admin.vendor_id,
        CustomerUser.customer_id == admin.customer_id,
        CustomerUser.role == CustomerRole.MEMBER,
        CustomerUser.disabled_at.is_(None),
    )
    user = session.scalar(query.with_for_update() if lock else query)
    if user is None:
        raise NotFoundError("colleague", user_id)
    return user


def remove_colleague(session: Session, admin: CustomerIdentity, user_id: str) -> CustomerUser:
    """Remove a colleague who has left: they can no longer log in, their portal
    sessions end at once, and the licenses and seats named to them are free again.
    The account is kept (disabled) for the audit log. Raises PermissionDeniedError
    unless ``admin`` is the customer admin, NotFoundError for anybody who is not a
    colleague of theirs (another customer's user, a customer admin, removed already)."""
    user = _colleague(session, admin, user_id, lock=True)
    user.disabled_at, user.link_token_hash = utcnow(), None
    session.execute(delete(CustomerSession).where(CustomerSession.customer_user_id == user.id))
    freed = session.scalars(
        select(LicenseAssignment.license_id).where(LicenseAssignment.customer_user_id == user.id)
    ).all()
    session.execute(delete(LicenseAssignment).where(LicenseAssignment.customer_user_id == user.id))
    record(
        session,
        actor_of(admin),
        "customer_user.removed",
        "customer_user",
        user.id,
        before={"email": user.email, "named_licenses": list(freed)},
    )
    return user
