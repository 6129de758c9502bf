"""The admins' view of the login throttle: which accounts are backing off or locked,
and until when, and unlocking one (which also forgets its failures).

A vendor's staff admins look after their colleagues (the console's staff page), a
customer admin after the customer's users (the portal's users page), vendor staff who
manage customers after those users too (the console's customer page), the operator after
anyone (``licentia admin user locks|unlock``). Every unlock is audited as
``login.unlocked``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import NotFoundError, PermissionDeniedError
from licentia.server.audit.services import record
from licentia.server.customer_users.invitations import actor_of
from licentia.server.customer_users.models import CustomerUser
from licentia.server.customer_users.services import CustomerIdentity, customer_users
from licentia.server.logins.services import (
    CUSTOMER,
    STAFF,
    AccountState,
    ThrottlePolicy,
    account_key,
    account_states,
    clear_account,
)
from licentia.server.tenancy.models import Vendor, VendorUser


def _slug(session: Session, vendor_id: str) -> str:
    vendor = session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFoundError("vendor", vendor_id)
    return vendor.slug


def lock_states(
    session: Session,
    realm: str,
    vendor_id: str,
    emails: Iterable[str],
    policy: ThrottlePolicy,
    now: datetime,
) -> dict[str, AccountState]:
    """The accounts among ``emails`` (of ``realm``, STAFF or CUSTOMER, at the vendor)
    that failed to log in lately, by e-mail; an e-mail without failures is absent."""
    slug = _slug(session, vendor_id)
    by_key = {account_key(realm, slug, email): email for email in emails}
    states = account_states(session, list(by_key), policy, now)
    return {by_key[key]: state for key, state in states.items()}


def locked_accounts(
    session: Session, realm: str, vendor_id: str, policy: ThrottlePolicy, now: datetime
) -> list[tuple[str, AccountState]]:
    """Every staff member (STAFF) or customer user (CUSTOMER) of the vendor with
    failures still counted, by e-mail, locked ones first."""
    model = VendorUser if realm == STAFF else CustomerUser
    emails = session.scalars(select(model.email).where(model.vendor_id == vendor_id))
    states = lock_states(session, realm, vendor_id, emails, policy, now)
    return sorted(states.items(), key=lambda item: (not item[1].locked_at(now), item[0]))


def unlock_staff_user(session: Session, actor: Actor, user_id: str) -> VendorUser:
    """Lift a staff member's login lock and forget their failures. Raises
    PermissionDeniedError without ``vendor:write``, NotFoundError for a user of another
    vendor."""
    actor.require("vendor:write")
    user = session.scalar(
        select(VendorUser).where(VendorUser.id == user_id, VendorUser.vendor_id == actor.vendor_id)
    )
    if user is None:
        raise NotFoundError("user", user_id)
    _unlock(session, actor, STAFF, user.vendor_id, user.email, "user", user.id)
    return user


def unlock_colleague(session: Session, admin: CustomerIdentity, user_id: str) -> CustomerUser:
    """The customer admin lifts a colleague's login lock. Raises PermissionDeniedError
    for anyone else, NotFoundError for a user of another customer."""
    if not admin.is_admin:
        raise PermissionDeniedError("only the customer admin unlocks the company's users")
    user = session.scalar(
        select(CustomerUser).where(
            CustomerUser.id == user_id,
            CustomerUser.vendor_id == admin.vendor_id,
            CustomerUser.customer_id == admin.customer_id,
        )
    )
    if user is None:
        raise NotFoundError("user", user_id)
    _unlock(
        session, actor_of(admin), CUSTOMER, user.vendor_id, user.email, "customer_user", user.id
    )
    return user


def customer_logins(
    session: Session,
    actor: Actor,
    customer_id: str,
    policy: ThrottlePolicy,
    now: datetime,
) -> tuple[list[CustomerUser], dict[str, AccountState]]:
    """A customer's users (by e-mail) and, of those that failed to log in lately, their
    throttle states, for vendor staff. Raises PermissionDeniedError without
    ``customers:read``; a customer of another vendor has no users here."""
    actor.require("customers:read")
    assert actor.vendor_id is not None, "staff look at their own vendor's customers"
    people = customer_users(session, actor.vendor_id, customer_id)
    emails = [person.email for person in people]
    return people, lock_states(session, CUSTOMER, actor.vendor_id, emails, policy, now)


def unlock_customer_user(
    session: Session, actor: Actor, customer_id: str, user_id: str
) -> CustomerUser:
    """Vendor staff lift the login lock of one of a customer's users (and forget their
    failures). Raises PermissionDeniedError without ``customers:write``, NotFoundError
    for a user of another customer or vendor."""
    actor.require("customers:write")
    user = session.scalar(
        select(CustomerUser).where(
            CustomerUser.id == user_id,
            CustomerUser.vendor_id == actor.vendor_id,
            CustomerUser.customer_id == customer_id,
        )
    )
    if user is None:
        raise NotFoundError("user", user_id)
    _unlock(session, actor, CUSTOMER, user.vendor_id, user.email, "customer_user", user.id)
    return user


def unlock_by_email(session: Session, actor: Actor, realm: str, email: str) -> str:
    """The operator lifts the lock of the actor's vendor's staff member (STAFF) or
    customer user (CUSTOMER) with this e-mail; returns their id. Raises NotFoundError."""
    assert actor.vendor_id is not None, "accounts are unlocked at one vendor"
    model = VendorUser if realm == STAFF else CustomerUser
    user_id = session.scalar(
        select(model.id).where(model.vendor_id == actor.vendor_id, model.email == email.lower())
    )
    if user_id is None:
        raise NotFoundError("user", email)
    object_type = "user" if realm == STAFF else "customer_user"
    _unlock(session, actor, realm, actor.vendor_id, email.lower(), object_type, user_id)
    return user_id


def _unlock(
    session: Session,
    actor: Actor,
    realm: str,
    vendor_id: str,
    email: str,
    object_type: str,
    object_id: str,
) -> None:
    if clear_account(session, account_key(realm, _slug(session, vendor_id), email)):
        record(session, actor, "login.unlocked", object_type, object_id, after={"email": email})
