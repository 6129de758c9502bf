"""Customer users: create, invite, log in, and turn a portal session into an identity.

A customer user always belongs to one customer of one vendor; every portal page reads
only that customer's objects. The customer admin manages the company's colleagues.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import AlreadyExistsError, AuthenticationError, ValidationError
from licentia.server.audit.services import record
from licentia.server.customer_users.models import CustomerSession, CustomerUser
from licentia.server.db.base import utcnow
from licentia.server.orders.services import get_customer
from licentia.server.tenancy.models import Vendor
from licentia.server.tenancy.passwords import check_password_rule, hash_password

SESSION_PREFIX = "lcu_"
WRONG_CREDENTIALS = "wrong e-mail or password"
LINK_TTL = timedelta(days=7)


class CustomerRole(StrEnum):
    ADMIN = "admin"  # the customer admin: manages the company's users
    MEMBER = "member"  # a colleague


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CustomerIdentity:
    """Who is behind a portal session: the only customer whose objects it may see."""

    user_id: str
    vendor_id: str
    customer_id: str
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == CustomerRole.ADMIN


@dataclass(frozen=True)
class NewCustomerUser:
    user: CustomerUser
    link_token: str | None  # for the mailed link when no password was set; shown once


def create_customer_user(
    session: Session,
    actor: Actor,
    customer_id: str,
    *,
    email: str,
    role: str,
    password: str | None = None,
) -> NewCustomerUser:
    """A customer user of the actor's vendor. Without a password they get a link token
    to set one (an invitation). Raises NotFoundError (customer), ValidationError (role,
    e-mail, password rule), AlreadyExistsError (e-mail taken at this vendor)."""
    customer = get_customer(session, actor, customer_id)
    if role not in {r.value for r in CustomerRole}:
        raise ValidationError("role must be admin or member", field="role")
    email = email.strip().lower()
    if "@" not in email:
        raise ValidationError("not an e-mail address", field="email")
    if password is not None:
        check_password_rule(password)
    taken = select(CustomerUser.id).where(
        CustomerUser.vendor_id == customer.vendor_id, CustomerUser.email == email
    )
    if session.scalar(taken):
        raise AlreadyExistsError(f"user {email} already exists", field="email")
    user = CustomerUser(
        vendor_id=customer.vendor_id,
        customer_id=customer.id,
        email=email,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
    )
    link = None if password is not None else _new_link(user)
    session.add(user)
    session.flush()
    record(
        session,
        actor,
        "customer_user.created",
        "customer_user",
        user.id,
        after={"customer_id": customer.id, "email": email, "role": role},
    )
    return NewCustomerUser(user, link)


def _new_link(user: CustomerUser) -> str:
    token = secrets.token_urlsafe(32)
    user.link_token_hash = _sha256(token)
    user.link_expires_at = utcnow() + LINK_TTL
    return token


def customer_users(session: Session, vendor_id: str, customer_id: str) -> list[CustomerUser]:
    query = select(CustomerUser).where(
        CustomerUser.vendor_id == vendor_id, CustomerUser.customer_id == customer_id
    )
    return list(session.scalars(query.order_by(CustomerUser.email)))


@dataclass(frozen=True)
class CustomerLoggedIn:
    token: str  # the cookie's value; only its hash is kept
    identity: CustomerIdentity
    expires_at: datetime


@dataclass(frozen=True)
class CustomerLoginCandidate:
    """Who a portal login names, read before the password is checked (outside any
    transaction); no hash for an unknown, disabled or not yet activated user."""

    user_id: str | None
    password_hash: str | None


def find_customer_login(session: Session, vendor: Vendor, *, email: str) -> CustomerLoginCandidate:
    row = session.execute(
        select(CustomerUser.id, CustomerUser.password_hash).where(
            CustomerUser.vendor_id == vendor.id,
            CustomerUser.email == email.strip().lower(),
            CustomerUser.disabled_at.is_(None),
        )
    ).first()
    if row is None:
        return CustomerLoginCandidate(None, None)
    return CustomerLoginCandidate(row.id, row.password_hash)


def start_customer_session(
    session: Session, candidate: CustomerLoginCandidate, *, ttl: timedelta
) -> CustomerLoggedIn:
    """The portal session of a candidate whose password matched. Raises
    AuthenticationError if the user was disabled or the password changed meanwhile."""
    user = session.get(CustomerUser, candidate.user_id) if candidate.user_id else None
    unchanged = user is not None and user.password_hash == candidate.password_hash
    if user is None or not unchanged or user.disabled_at is not None:
        raise AuthenticationError(WRONG_CREDENTIALS)
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + ttl
    session.add(
        CustomerSession(
            token_hash=_sha256(token),
            customer_user_id=user.id,
            vendor_id=user.vendor_id,
            expires_at=expires_at,
        )
    )
    return CustomerLoggedIn(token, _identity(user), expires_at)


def authenticate_customer(session: Session, token: str) -> CustomerIdentity:
    """The customer user behind a portal session token; AuthenticationError for an
    unknown or expired session or a disabled user."""
    row = session.execute(_SESSION, {"token_hash": _sha256(token)}).first()
    if row is None or row[0].expires_at <= utcnow() or row[1].disabled_at is not None:
        raise AuthenticationError("the session is unknown or has expired; log in again")
    return _identity(row[1])


_SESSION = (  # built once: every portal page asks
    select(CustomerSession, CustomerUser)
    .join(CustomerUser, CustomerUser.id == CustomerSession.customer_user_id)
    .where(
        CustomerSession.token_hash == bindparam("token_hash", type_=CustomerSession.token_hash.type)
    )
)


def log_out_customer(session: Session, token: str) -> None:
    """End the portal session of ``token`` (nothing happens for an unknown token)."""
    session.execute(delete(CustomerSession).where(CustomerSession.token_hash == _sha256(token)))


def _identity(user: CustomerUser) -> CustomerIdentity:
    return CustomerIdentity(user.id, user.vendor_id, user.customer_id, user.email, user.role)
