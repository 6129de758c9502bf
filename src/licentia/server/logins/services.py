"""Logging in, for the API and both web fronts: the same throttle in front of each.

Failed logins are counted per account (vendor and e-mail) and per source address in a
sliding window, in the database, so that several nodes share the count. Past the limit
a login is refused with ``LOGIN_THROTTLED`` before the password is even checked, so a
guesser learns nothing more; a success clears its account's count.

A failed login must be recorded although the login fails: the use cases return a
``Refused`` outcome instead of raising, so that the caller commits the count and then
raises the error it carries (as the device protocol does with its flags).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from licentia.domain.errors import AuthenticationError, LoginThrottledError
from licentia.server.customer_users.services import CustomerLoggedIn, log_in_customer
from licentia.server.logins.models import LoginFailure
from licentia.server.settings import Settings
from licentia.server.tenancy.services import LoggedIn, get_vendor_by_slug, log_in


@dataclass(frozen=True)
class ThrottlePolicy:
    per_account: int = 5
    per_address: int = 30
    window: timedelta = timedelta(minutes=15)

    @classmethod
    def of(cls, settings: Settings) -> ThrottlePolicy:
        """The operator's limits (``LICENTIA_LOGIN_*``)."""
        return cls(
            settings.login_failures_per_account,
            settings.login_failures_per_address,
            timedelta(minutes=settings.login_window_minutes),
        )


@dataclass(frozen=True)
class Refused:
    error: AuthenticationError


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def login_keys(realm: str, vendor_slug: str, email: str, source_ip: str | None) -> tuple[str, str]:
    account = _key(f"account:{realm}:{vendor_slug}:{email.strip().lower()}")
    return account, _key(f"ip:{source_ip or 'unknown'}")


def ensure_not_throttled(
    session: Session, keys: tuple[str, str], policy: ThrottlePolicy, now: datetime
) -> None:
    """Raises LoginThrottledError when the account or the address failed too often in
    the window; ``retry_after_seconds`` says when the oldest counted failure drops out."""
    since = now - policy.window
    for key, limit in zip(keys, (policy.per_account, policy.per_address), strict=True):
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.at)).where(
                LoginFailure.key_hash == key, LoginFailure.at > since
            )
        ).one()
        if count >= limit:
            wait = (oldest + policy.window - now).total_seconds()
            raise LoginThrottledError(max(1, int(wait) + 1))


def record_failure(session: Session, keys: tuple[str, str], now: datetime) -> None:
    for key in keys:
        session.add(LoginFailure(key_hash=key, at=now))


def clear_account(session: Session, account_key: str) -> None:
    session.execute(delete(LoginFailure).where(LoginFailure.key_hash == account_key))


def log_in_staff(
    session: Session,
    *,
    vendor_slug: str,
    email: str,
    password: str,
    source_ip: str | None,
    ttl: timedelta,
    policy: ThrottlePolicy,
    now: datetime,
) -> LoggedIn | Refused:
    """A vendor user's session, or Refused (commit, then raise its error) for wrong
    credentials. Raises LoginThrottledError past the throttle's limits."""
    keys = login_keys("staff", vendor_slug, email, source_ip)
    ensure_not_throttled(session, keys, policy, now)
    try:
        done = log_in(session, vendor_slug=vendor_slug, email=email, password=password, ttl=ttl)
    except AuthenticationError as error:
        record_failure(session, keys, now)
        return Refused(error)
    clear_account(session, keys[0])
    return done


def log_in_customer_user(
    session: Session,
    *,
    vendor_slug: str,
    email: str,
    password: str,
    source_ip: str | None,
    ttl: timedelta,
    policy: ThrottlePolicy,
    now: datetime,
) -> CustomerLoggedIn | Refused:
    """A customer user's portal session; otherwise as :func:`log_in_staff`."""
    keys = login_keys("customer", vendor_slug, email, source_ip)
    ensure_not_throttled(session, keys, policy, now)
    try:
        vendor = get_vendor_by_slug(session, vendor_slug)
        done = log_in_customer(session, vendor, email=email, password=password, ttl=ttl)
    except AuthenticationError as error:
        record_failure(session, keys, now)
        return Refused(error)
    clear_account(session, keys[0])
    return done
