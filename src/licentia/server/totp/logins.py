"""The second step of a staff login with TOTP on, for the API and the console.

The API's ``POST /sessions`` sends the code with the password: the password is checked
first (``logins.bounded``), then :func:`second_factor` asks for the code, so a wrong
password never reveals whether TOTP is on. The console asks for the code on a page of
its own after the password: :func:`finish_staff_login` checks it and opens the
session. A wrong code counts as a failed login of the account (the same throttle as a
wrong password), so the six digits cannot be guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.errors import (
    AuthenticationError,
    CodeInvalidError,
    CodeRequiredError,
    PermissionDeniedError,
)
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.keys.master import MasterKey
from licentia.server.logins.events import LoginAttempt
from licentia.server.logins.services import (
    STAFF,
    ThrottlePolicy,
    clear_account,
    ensure_not_throttled,
    login_keys,
    record_failure,
)
from licentia.server.tenancy.models import Vendor, VendorUser
from licentia.server.tenancy.services import LoggedIn, LoginCandidate, start_session
from licentia.server.totp.services import check_code, enrolment_needed, is_enabled

SecondFactor = Callable[[str], None]


def second_factor(
    db: Database,
    master: MasterKey,
    code: str | None,
    *,
    now: datetime,
    required_for_admins: bool = False,
) -> SecondFactor:
    """The check ``logins.bounded`` runs once the password matched, given the user's
    id. It raises CodeRequiredError (``TOTP_REQUIRED``) when TOTP is on and no code
    came, CodeInvalidError (``TOTP_INVALID``) for a wrong one, and, with
    ``required_for_admins``, PermissionDeniedError ``TOTP_ENROLMENT_REQUIRED`` for an
    admin who has not turned TOTP on (the API; the console sends them to enrol)."""

    def check(user_id: str) -> None:
        def state(session: Session) -> tuple[bool, bool]:
            return is_enabled(session, user_id), enrolment_needed(
                session, user_id, required_for_admins=required_for_admins
            )

        enabled, must_enrol = run_read(db, state)
        if must_enrol:
            raise PermissionDeniedError(
                "the operator requires TOTP for vendor admins: turn it on in the console first",
                code="TOTP_ENROLMENT_REQUIRED",
            )
        if not enabled:
            return
        if not code or not code.strip():
            raise CodeRequiredError(
                "this account needs the code of its authenticator", user_id=user_id
            )
        run_write(db, lambda session: check_code(session, master, user_id, code, now))

    return check


def finish_staff_login(
    db: Database,
    master: MasterKey,
    *,
    user_id: str,
    code: str,
    source_ip: str | None,
    ttl: timedelta,
    policy: ThrottlePolicy,
    now: datetime,
) -> LoggedIn:
    """The session of a staff member whose password matched a moment ago (the console
    vouches for that with a signed challenge) once ``code`` is right. Raises
    LoginThrottledError, CodeInvalidError (counted as a failed login) and
    AuthenticationError for a user disabled meanwhile."""

    def read(session: Session) -> tuple[tuple[str, str], LoginCandidate, LoginAttempt]:
        row = session.execute(
            select(VendorUser, Vendor.slug)
            .join(Vendor, Vendor.id == VendorUser.vendor_id)
            .where(VendorUser.id == user_id, VendorUser.disabled_at.is_(None))
        ).first()
        if row is None:
            raise AuthenticationError("this login has ended; log in again")
        user = row[0]
        keys = login_keys(STAFF, row[1], user.email, source_ip)
        ensure_not_throttled(session, keys, policy, now)
        login = LoginAttempt(STAFF, user.vendor_id, user.id, user.email, source_ip)
        return keys, LoginCandidate(user.id, user.password_hash), login

    keys, candidate, login = run_read(db, read)

    def open_session(session: Session) -> LoggedIn:
        check_code(session, master, user_id, code, now)
        clear_account(session, keys[0])
        done = start_session(session, candidate, ttl=ttl)
        login.succeeded(session)
        return done

    try:
        return run_write(db, open_session)
    except CodeInvalidError:
        run_write(
            db,
            lambda session: login.failed(
                session, record_failure(session, keys, policy, now), reason="code"
            ),
        )
        raise
