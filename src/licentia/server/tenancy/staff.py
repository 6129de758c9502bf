"""A vendor's staff: invited by an e-mailed link to set a password, given a role,
disabled when they leave.

Staff manage each other inside one vendor only; every function takes the acting
staff member's ``Actor`` and finds users of that actor's vendor alone. A vendor is
never left without an active admin: the last one can be neither demoted nor disabled.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import (
    AlreadyExistsError,
    ConflictError,
    LinkInvalidError,
    NotFoundError,
    ValidationError,
)
from licentia.domain.scopes import Role
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.tenancy.models import UserSession, Vendor, VendorUser
from licentia.server.tenancy.passwords import PasswordChecks, check_password_rule, hash_password

LINK_TTL = timedelta(days=7)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Invitation:
    """A staff member invited; ``link_token`` goes into the mailed link, nowhere else."""

    user: VendorUser
    link_token: str


def staff_query(actor: Actor) -> Select[VendorUser]:
    """The actor's vendor's staff, for a paginated list."""
    return select(VendorUser).where(VendorUser.vendor_id == _vendor(actor))


def get_staff_user(
    session: Session, actor: Actor, user_id: str, *, lock: bool = False
) -> VendorUser:
    """Raises NotFoundError for a user of another vendor, or none."""
    query = select(VendorUser).where(
        VendorUser.id == user_id, VendorUser.vendor_id == _vendor(actor)
    )
    user = session.scalar(query.with_for_update() if lock else query)
    if user is None:
        raise NotFoundError("user", user_id)
    return user


def invite_user(session: Session, actor: Actor, *, email: str, role: str) -> Invitation:
    """A new staff member without a password, and the token of the link that sets one
    (valid for ``LINK_TTL``, once). Raises ValidationError (role, e-mail) and
    AlreadyExistsError (the e-mail is taken at this vendor)."""
    _check_role(role)
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise ValidationError("not an e-mail address", field="email")
    taken = select(VendorUser.id).where(
        VendorUser.vendor_id == _vendor(actor), VendorUser.email == email
    )
    if session.scalar(taken):
        raise AlreadyExistsError(f"user {email} already exists", field="email")
    user = VendorUser(vendor_id=_vendor(actor), email=email, password_hash=None, role=role)
    token = _new_link(user)
    session.add(user)
    session.flush()
    record(session, actor, "user.invited", "user", user.id, after={"email": email, "role": role})
    return Invitation(user, token)


def renew_invitation(session: Session, actor: Actor, user_id: str) -> Invitation:
    """A new link for a staff member who has not set a password yet (the old link
    stops working). Raises NotFoundError, or ConflictError ``ALREADY_ACTIVE``."""
    user = get_staff_user(session, actor, user_id, lock=True)
    if user.password_hash is not None or user.disabled_at is not None:
        raise ConflictError(
            "this user has set a password already or is disabled", code="ALREADY_ACTIVE"
        )
    token = _new_link(user)
    record(session, actor, "user.invited", "user", user.id, after={"email": user.email})
    return Invitation(user, token)


def _new_link(user: VendorUser) -> str:
    token = secrets.token_urlsafe(32)
    user.link_token_hash = _sha256(token)
    user.link_expires_at = utcnow() + LINK_TTL
    return token


def invited_user(session: Session, token: str) -> tuple[VendorUser, Vendor]:
    """The user a link token belongs to, and their vendor; raises LinkInvalidError for
    a token unknown, used already or past its time."""
    row = session.execute(
        select(VendorUser, Vendor)
        .join(Vendor, Vendor.id == VendorUser.vendor_id)
        .where(VendorUser.link_token_hash == _sha256(token))
    ).first()
    if row is None or row[0].link_expires_at is None or row[0].link_expires_at <= utcnow():
        raise LinkInvalidError("this link is unknown, used already or expired; ask for a new one")
    if row[0].disabled_at is not None:
        raise LinkInvalidError("this account is disabled")
    return row[0], row[1]


def new_password_hash(password: str, checks: PasswordChecks) -> str:
    """The hash of a new password, made in one of ``checks``' slots and outside any
    transaction (argon2 takes memory and tens of milliseconds: no write lock waits for
    it). Raises ValidationError (field ``password``) for a weak one, ServerBusyError
    ``LOGINS_BUSY`` when every slot is taken."""
    check_password_rule(password)
    return checks.run(lambda: hash_password(password))


def set_password_with_link(session: Session, token: str, password_hash: str) -> VendorUser:
    """Set the password (hashed by :func:`new_password_hash`) of the user the link
    names; the link then stops working. Raises LinkInvalidError."""
    user, _vendor_row = invited_user(session, token)
    user.password_hash = password_hash
    user.link_token_hash = None
    user.link_expires_at = None
    actor = Actor(ActorKind.USER, user.id, user.vendor_id)
    record(session, actor, "user.password_set", "user", user.id)
    return user


def change_role(session: Session, actor: Actor, user_id: str, role: str) -> VendorUser:
    """Give a staff member another role (from their next request on). Raises
    ValidationError (unknown role) and ConflictError ``LAST_ADMIN``."""
    _check_role(role)
    admins = _lock_admins(session, actor)
    user = get_staff_user(session, actor, user_id, lock=True)
    if user.role == role:
        return user
    _keep_an_admin(admins, user)
    before, user.role = user.role, role
    record(
        session,
        actor,
        "user.role_changed",
        "user",
        user.id,
        before={"role": before},
        after={"role": role},
    )
    return user


def disable_user(session: Session, actor: Actor, user_id: str) -> VendorUser:
    """Disable a staff member: their sessions end at once and they cannot log in.
    Raises ConflictError ``LAST_ADMIN`` for the vendor's last active admin."""
    admins = _lock_admins(session, actor)
    user = get_staff_user(session, actor, user_id, lock=True)
    if user.disabled_at is not None:
        return user
    _keep_an_admin(admins, user)
    user.disabled_at = utcnow()
    user.link_token_hash = user.link_expires_at = None
    session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    record(
        session,
        actor,
        "user.disabled",
        "user",
        user.id,
        before={"disabled": False},
        after={"disabled": True},
    )
    return user


def enable_user(session: Session, actor: Actor, user_id: str) -> VendorUser:
    """Let a disabled staff member log in again (with the password they had)."""
    user = get_staff_user(session, actor, user_id, lock=True)
    if user.disabled_at is not None:
        user.disabled_at = None
        record(
            session,
            actor,
            "user.enabled",
            "user",
            user.id,
            before={"disabled": True},
            after={"disabled": False},
        )
    return user


def _lock_admins(session: Session, actor: Actor) -> set[str]:
    """The ids of the vendor's active admins, locked (in id order, so that two changes
    at once wait for each other instead of deadlocking) until the transaction ends:
    two admins demoting each other at once cannot both succeed."""
    query = (
        select(VendorUser.id)
        .where(
            VendorUser.vendor_id == _vendor(actor),
            VendorUser.role == Role.ADMIN.value,
            VendorUser.disabled_at.is_(None),
        )
        .order_by(VendorUser.id)
        .with_for_update()
    )
    return set(session.scalars(query))


def _keep_an_admin(admins: set[str], leaving: VendorUser) -> None:
    if leaving.id in admins and not admins - {leaving.id}:
        raise ConflictError("a vendor keeps at least one active admin", code="LAST_ADMIN")


def _check_role(role: str) -> None:
    if role not in {r.value for r in Role}:
        raise ValidationError(
            f"role must be one of {', '.join(r.value for r in Role)}", field="role"
        )


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "staff are managed inside one vendor"
    return actor.vendor_id
