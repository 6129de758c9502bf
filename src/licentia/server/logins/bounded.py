"""Logins (a vendor user's for the API and the console, a customer user's for the
portal), with the password checked outside any transaction.

argon2id takes tens of milliseconds and 64 MiB. Run inside a write transaction it held
a pooled connection and, on SQLite, the write lock for that long: 32 concurrent wrong
passwords slowed a legitimate order to seconds and 80 exhausted the pool. Here a login
is three steps: a read (the throttle, then the user), the check on the process's
bounded :class:`~licentia.server.tenancy.passwords.PasswordChecks`, and a short write
(the failure counted, or the session opened and the account's count cleared), which
also records the login's audit event (:mod:`licentia.server.logins.events`).

The throttle is read before the check and counted after it, so logins checked at the
same moment may pass the per-account limit by at most the number of checks running
at once (``LICENTIA_PASSWORD_CHECKS`` per process).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from licentia.domain.errors import AuthenticationError, CodeInvalidError
from licentia.server.customer_users.services import (
    WRONG_CREDENTIALS as WRONG_CUSTOMER_CREDENTIALS,
)
from licentia.server.customer_users.services import (
    CustomerLoggedIn,
    CustomerLoginCandidate,
    find_customer_login,
    start_customer_session,
)
from licentia.server.db.engine import Database, run_read, run_write
from licentia.server.logins.events import LoginAttempt
from licentia.server.logins.services import (
    CUSTOMER,
    STAFF,
    ThrottlePolicy,
    clear_account,
    ensure_not_throttled,
    login_keys,
    record_failure,
)
from licentia.server.tenancy.passwords import PasswordChecks
from licentia.server.tenancy.services import (
    WRONG_CREDENTIALS,
    LoggedIn,
    LoginCandidate,
    find_login,
    get_vendor_by_slug,
    start_session,
    vendor_id_of,
)


def log_in_staff_outside_transactions(
    db: Database,
    checks: PasswordChecks,
    *,
    vendor_slug: str,
    email: str,
    password: str,
    source_ip: str | None,
    ttl: timedelta,
    policy: ThrottlePolicy,
    now: datetime,
    second_factor: Callable[[str], None] | None = None,
) -> LoggedIn:
    """A vendor user's session, in units of work of its own. Raises
    LoginThrottledError, AuthenticationError (the same for every wrong credential, its
    failure counted) or ServerBusyError (``LOGINS_BUSY``: every check slot is taken).
    ``second_factor`` (``totp.logins``) runs with the user's id once the password
    matched; what it raises is raised, a CodeInvalidError counted as a failure."""
    keys = login_keys(STAFF, vendor_slug, email, source_ip)

    def read(session: Session) -> tuple[str | None, LoginCandidate]:
        ensure_not_throttled(session, keys, policy, now)
        return vendor_id_of(session, vendor_slug), find_login(
            session, vendor_slug=vendor_slug, email=email
        )

    vendor_id, candidate = run_read(db, read)
    login = LoginAttempt(STAFF, vendor_id, candidate.user_id, email, source_ip)
    if not checks.matches(candidate.password_hash, password):
        run_write(
            db, lambda session: login.failed(session, record_failure(session, keys, policy, now))
        )
        raise AuthenticationError(WRONG_CREDENTIALS)
    if second_factor is not None and candidate.user_id is not None:
        try:
            second_factor(candidate.user_id)
        except CodeInvalidError:
            run_write(
                db,
                lambda session: login.failed(
                    session, record_failure(session, keys, policy, now), reason="code"
                ),
            )
            raise

    def open_session(session: Session) -> LoggedIn:
        clear_account(session, keys[0])
        done = start_session(session, candidate, ttl=ttl)
        login.succeeded(session)
        return done

    return run_write(db, open_session)


def log_in_customer_outside_transactions(
    db: Database,
    checks: PasswordChecks,
    *,
    vendor_slug: str,
    email: str,
    password: str,
    source_ip: str | None,
    ttl: timedelta,
    policy: ThrottlePolicy,
    now: datetime,
) -> CustomerLoggedIn:
    """A customer user's portal session, in the same three steps and with the same
    errors as :func:`log_in_staff_outside_transactions` (its own account counts)."""
    keys = login_keys(CUSTOMER, vendor_slug, email, source_ip)

    def read(session: Session) -> tuple[str, CustomerLoginCandidate]:
        ensure_not_throttled(session, keys, policy, now)
        vendor = get_vendor_by_slug(session, vendor_slug)
        return vendor.id, find_customer_login(session, vendor, email=email)

    vendor_id, candidate = run_read(db, read)
    login = LoginAttempt(CUSTOMER, vendor_id, candidate.user_id, email, source_ip)
    if not checks.matches(candidate.password_hash, password):
        run_write(
            db, lambda session: login.failed(session, record_failure(session, keys, policy, now))
        )
        raise AuthenticationError(WRONG_CUSTOMER_CREDENTIALS)

    def open_session(session: Session) -> CustomerLoggedIn:
        clear_account(session, keys[0])
        done = start_customer_session(session, candidate, ttl=ttl)
        login.succeeded(session)
        return done

    return run_write(db, open_session)
