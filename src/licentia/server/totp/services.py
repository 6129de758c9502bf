"""TOTP for vendor staff: enrol, confirm, check at login, disable; recovery codes.

A staff member turns TOTP on in two steps: :func:`start_enrolment` makes a secret
(shown once as an ``otpauth://`` URI and a QR code), and :func:`confirm_enrolment`
turns it on only when a code made from it is typed back, so nobody is locked out by
an authenticator that never received the secret. Confirming gives ten recovery codes,
each accepted once in place of a code. Codes are RFC 6238's (SHA-1, 6 digits, 30 s),
what every authenticator app makes; one step either side of now is accepted for a
phone's clock, and no code is accepted twice (``last_step``).

The secret is stored encrypted under the master key, the recovery codes as keyed
hashes. The operator may require TOTP of every vendor admin
(``LICENTIA_TOTP_REQUIRED_FOR_ADMINS``): :func:`enrolment_needed` says who must enrol
before doing anything else, and such an admin cannot turn it off.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

import pyotp
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import CodeInvalidError, ConflictError
from licentia.domain.scopes import Role
from licentia.server.audit.services import record
from licentia.server.keys.master import MasterKey
from licentia.server.tenancy.models import Vendor, VendorUser
from licentia.server.tenancy.staff import get_staff_user
from licentia.server.totp.models import RecoveryCode, StaffTotp

STEP_SECONDS = 30
RECOVERY_CODES = 10
_SECRET_PURPOSE = "staff-totp-secret"  # noqa: S105 - a key derivation's label, no secret
_RECOVERY_PURPOSE = "staff-recovery-code"
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
WRONG_CODE = "the code is wrong or was used already; type the current one"


@dataclass(frozen=True)
class Enrolment:
    """What the authenticator app needs: the secret, as text and as an otpauth URI."""

    secret: str
    uri: str


@dataclass(frozen=True)
class TotpStatus:
    enabled: bool
    enrolling: bool
    recovery_codes_left: int


def status_of(session: Session, user_id: str) -> TotpStatus:
    row = session.get(StaffTotp, user_id)
    left = session.scalar(
        select(func.count()).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    enabled = row is not None and row.enabled_at is not None
    return TotpStatus(enabled, row is not None and not enabled, int(left or 0))


def is_enabled(session: Session, user_id: str) -> bool:
    enabled_at = session.scalar(select(StaffTotp.enabled_at).where(StaffTotp.user_id == user_id))
    return enabled_at is not None


def enrolment_needed(session: Session, user_id: str, *, required_for_admins: bool) -> bool:
    """Whether the operator requires TOTP of this user (an admin) and it is not on."""
    if not required_for_admins:
        return False
    role = session.scalar(select(VendorUser.role).where(VendorUser.id == user_id))
    return role == Role.ADMIN.value and not is_enabled(session, user_id)


def start_enrolment(session: Session, master: MasterKey, actor: Actor) -> Enrolment:
    """A new secret for the acting staff member, not on until confirmed (an enrolment
    begun before is replaced). Raises ConflictError ``TOTP_ALREADY_ON``."""
    user, vendor = _user(session, actor)
    row = session.get(StaffTotp, user.id, with_for_update=True)
    if row is not None and row.enabled_at is not None:
        raise ConflictError("TOTP is on already; turn it off first", code="TOTP_ALREADY_ON")
    secret = pyotp.random_base32()
    sealed = master.encrypt(secret.encode(), purpose=_SECRET_PURPOSE)
    if row is None:
        session.add(StaffTotp(user_id=user.id, vendor_id=user.vendor_id, secret=sealed))
    else:
        row.secret, row.last_step = sealed, None
    return Enrolment(secret, _uri(secret, user.email, vendor))


def enrolment_of(session: Session, master: MasterKey, actor: Actor) -> Enrolment | None:
    """The enrolment begun and not yet confirmed, to show again; None if there is none."""
    user, vendor = _user(session, actor)
    row = session.get(StaffTotp, user.id)
    if row is None or row.enabled_at is not None:
        return None
    secret = master.decrypt(row.secret, purpose=_SECRET_PURPOSE).decode()
    return Enrolment(secret, _uri(secret, user.email, vendor))


def confirm_enrolment(
    session: Session, master: MasterKey, actor: Actor, code: str, now: datetime
) -> list[str]:
    """Turn TOTP on when ``code`` comes from the enrolled secret; returns the recovery
    codes (shown once, only their keyed hashes are kept). Raises CodeInvalidError
    (field ``code``), ConflictError ``TOTP_NOT_ENROLLING`` without an enrolment."""
    user, _vendor = _user(session, actor)
    row = session.get(StaffTotp, user.id, with_for_update=True)
    if row is None or row.enabled_at is not None:
        raise ConflictError("set up the authenticator first", code="TOTP_NOT_ENROLLING")
    step = _matching_step(master, row, code, now)
    if step is None:
        raise CodeInvalidError(WRONG_CODE, field="code")
    row.enabled_at, row.last_step = now, step
    codes = _new_recovery_codes(session, master, user.id)
    record(session, actor, "user.totp_enabled", "user", user.id, after={"totp": True})
    return codes


def check_code(session: Session, master: MasterKey, user_id: str, code: str, now: datetime) -> None:
    """Accept a current TOTP code (once) or an unused recovery code (spending it) of a
    user with TOTP on. Raises CodeInvalidError for anything else."""
    row = session.get(StaffTotp, user_id, with_for_update=True)
    if row is None or row.enabled_at is None:
        raise CodeInvalidError(WRONG_CODE, field="code")
    step = _matching_step(master, row, code, now)
    if step is not None:
        row.last_step = step
        return
    recovery = session.scalar(
        select(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _recovery_hash(master, code),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    )
    if recovery is None:
        raise CodeInvalidError(WRONG_CODE, field="code")
    recovery.used_at = now
    actor = Actor(ActorKind.USER, user_id, row.vendor_id)
    record(session, actor, "user.recovery_code_used", "user", user_id)


def disable_totp(
    session: Session,
    master: MasterKey,
    actor: Actor,
    code: str,
    now: datetime,
    *,
    required_for_admins: bool,
) -> None:
    """Turn TOTP off (the caller checked the password) with a current code or a
    recovery code; the recovery codes go too. Raises CodeInvalidError, ConflictError
    ``TOTP_REQUIRED_BY_OPERATOR`` for an admin when the operator requires it."""
    user, _vendor = _user(session, actor)
    if required_for_admins and user.role == Role.ADMIN.value:
        raise ConflictError(
            "the operator requires TOTP for vendor admins", code="TOTP_REQUIRED_BY_OPERATOR"
        )
    check_code(session, master, user.id, code, now)
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(delete(StaffTotp).where(StaffTotp.user_id == user.id))
    record(session, actor, "user.totp_disabled", "user", user.id, after={"totp": False})


def enabled_among(session: Session, user_ids: list[str]) -> set[str]:
    """Which of these users have TOTP on (for the staff list)."""
    if not user_ids:
        return set()
    query = select(StaffTotp.user_id).where(
        StaffTotp.user_id.in_(user_ids), StaffTotp.enabled_at.is_not(None)
    )
    return set(session.scalars(query))


def reset_for_member(session: Session, actor: Actor, user_id: str) -> None:
    """An admin turns a colleague's TOTP off (a lost phone and lost recovery codes);
    they log in with the password alone until they enrol again (and must, if the
    operator requires it of admins). Raises NotFoundError for a user of another
    vendor. Audited as ``user.totp_reset``."""
    user = get_staff_user(session, actor, user_id, lock=True)
    if session.get(StaffTotp, user.id) is None:
        return
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(delete(StaffTotp).where(StaffTotp.user_id == user.id))
    record(session, actor, "user.totp_reset", "user", user.id, after={"totp": False})


def password_hash_of(session: Session, actor: Actor) -> str | None:
    """The acting member's password hash, to check before TOTP is turned off."""
    user, _vendor = _user(session, actor)
    return user.password_hash


def _matching_step(master: MasterKey, row: StaffTotp, code: str, now: datetime) -> int | None:
    """The time step (now, or one either side) whose code is ``code``, if it is later
    than the last one accepted."""
    typed = "".join(code.split())
    if len(typed) != 6 or not typed.isdigit():
        return None
    totp = pyotp.TOTP(master.decrypt(row.secret, purpose=_SECRET_PURPOSE).decode())
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        fresh = row.last_step is None or step > row.last_step
        if fresh and hmac.compare_digest(totp.at(step * STEP_SECONDS), typed):
            return step
    return None


def _new_recovery_codes(session: Session, master: MasterKey, user_id: str) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    for code in codes:
        session.add(RecoveryCode(user_id=user_id, code_hash=_recovery_hash(master, code)))
    return codes


def _recovery_code() -> str:
    """Ten symbols (about 50 bits) in two groups: ``abcde-fghjk``."""
    symbols = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{symbols[:5]}-{symbols[5:]}"


def _recovery_hash(master: MasterKey, code: str) -> str:
    normal = "".join(code.split()).lower().replace("-", "")
    return master.keyed_hash(normal, purpose=_RECOVERY_PURPOSE)


def _uri(secret: str, email: str, vendor: Vendor) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=f"Licentia {vendor.slug}")


def _user(session: Session, actor: Actor) -> tuple[VendorUser, Vendor]:
    row = session.execute(
        select(VendorUser, Vendor)
        .join(Vendor, Vendor.id == VendorUser.vendor_id)
        .where(VendorUser.id == actor.id, VendorUser.vendor_id == actor.vendor_id)
    ).first()
    assert row is not None, "the actor is a logged-in staff member"
    return row[0], row[1]
