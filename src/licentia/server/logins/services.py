"""The login throttle, the same in front of the API and both web fronts.

Two counts, both in the database so that several nodes share them:

- **per address**: failed logins from one source address in a sliding window; past
  the limit a login from there is refused with ``LOGIN_THROTTLED``;
- **per account** (realm, vendor and e-mail): failed logins since the last success, an
  admin's unlock, or a quiet period. From the ``per_account``-th on, each failure
  locks the account, first for ``first_lock``, then twice as long per further failure,
  never longer than ``longest_lock``: a login is refused with ``LOGIN_LOCKED`` until
  then, with the right password too. The lock is bounded, so a guesser cannot lock an
  owner out for longer than that, and each lock costs them one more wrong guess.

Both refusals come before the password is checked, so a guesser learns nothing and
spends no hashing. The logins themselves are in :mod:`licentia.server.logins.bounded`;
the admins' view of the locks in :mod:`licentia.server.logins.locks`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from licentia.domain.errors import LoginLockedError, LoginThrottledError
from licentia.server.logins.models import LoginFailure, LoginLock
from licentia.server.settings import Settings

STAFF = "staff"  # a vendor user: the API's POST /sessions and the console
CUSTOMER = "customer"  # a customer user: the License Portal


@dataclass(frozen=True)
class ThrottlePolicy:
    per_account: int = 5
    per_address: int = 30
    window: timedelta = timedelta(minutes=15)
    first_lock: timedelta = timedelta(minutes=1)
    longest_lock: timedelta = timedelta(hours=1)
    forget_after: timedelta = timedelta(hours=24)

    @classmethod
    def of(cls, settings: Settings) -> ThrottlePolicy:
        """The operator's limits (``LICENTIA_LOGIN_*``)."""
        return cls(
            settings.login_failures_per_account,
            settings.login_failures_per_address,
            timedelta(minutes=settings.login_window_minutes),
            timedelta(minutes=settings.login_lock_minutes),
            timedelta(minutes=settings.login_lock_max_minutes),
            timedelta(hours=settings.login_lock_reset_hours),
        )

    def lock_for(self, failures: int) -> timedelta | None:
        """How long ``failures`` failures in a row lock an account: None below
        ``per_account``, then ``first_lock`` doubled per failure beyond, at most
        ``longest_lock``."""
        if failures < self.per_account:
            return None
        doublings = min(failures - self.per_account, 40)  # 2**40 minutes: past any cap
        lock: timedelta = self.first_lock * (1 << doublings)
        return min(lock, self.longest_lock)


@dataclass(frozen=True)
class AccountState:
    """An account's failed logins in a row and the end of its lock (None: never locked
    since the count began; a past time: the lock is over, the count goes on)."""

    failures: int
    locked_until: datetime | None

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def account_key(realm: str, vendor_slug: str, email: str) -> str:
    """The hash that names an account in the throttle (``realm`` is STAFF or CUSTOMER)."""
    return _key(f"account:{realm}:{vendor_slug}:{email.strip().lower()}")


def login_keys(realm: str, vendor_slug: str, email: str, source_ip: str | None) -> tuple[str, str]:
    return account_key(realm, vendor_slug, email), _key(f"ip:{source_ip or 'unknown'}")


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds()) + 1)


def ensure_not_throttled(
    session: Session, keys: tuple[str, str], policy: ThrottlePolicy, now: datetime
) -> None:
    """Raises LoginLockedError while the account is locked, LoginThrottledError when the
    address failed too often in the window; ``retry_after_seconds`` says when either
    ends."""
    account, address = keys
    locked_until = session.scalar(
        select(LoginLock.locked_until).where(LoginLock.key_hash == account)
    )
    if locked_until is not None and locked_until > now:
        raise LoginLockedError(
            _retry_after(locked_until, now), locked_until=locked_until.isoformat()
        )
    count, oldest = session.execute(
        select(func.count(), func.min(LoginFailure.at)).where(
            LoginFailure.key_hash == address, LoginFailure.at > now - policy.window
        )
    ).one()
    if count >= policy.per_address:
        raise LoginThrottledError(_retry_after(oldest + policy.window, now))


def record_failure(
    session: Session, keys: tuple[str, str], policy: ThrottlePolicy, now: datetime
) -> AccountState:
    """Count a failed login for the address and the account, and lock the account as
    the policy says. The account's row is counted up by one statement (an upsert),
    whose row lock orders concurrent failures: each sees the count the one before
    left."""
    account, address = keys
    session.add(LoginFailure(key_hash=address, at=now))
    forgotten = LoginLock.last_failure_at <= now - policy.forget_after
    failures = session.execute(
        _upsert(session)
        .values(key_hash=account, failures=1, last_failure_at=now, locked_until=None)
        .on_conflict_do_update(
            index_elements=[LoginLock.key_hash],
            set_={
                "failures": case((forgotten, 1), else_=LoginLock.failures + 1),
                "locked_until": case((forgotten, None), else_=LoginLock.locked_until),
                "last_failure_at": now,
            },
        )
        .returning(LoginLock.failures)
    ).scalar_one()
    lock = policy.lock_for(failures)
    if lock is None:
        return AccountState(failures, None)
    session.execute(
        update(LoginLock).where(LoginLock.key_hash == account).values(locked_until=now + lock)
    )
    return AccountState(failures, now + lock)


def _upsert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(LoginLock)


def clear_account(session: Session, account: str) -> bool:
    """Forget the account's failures and lift its lock (a success, or an unlock);
    whether it had any."""
    done = session.execute(delete(LoginLock).where(LoginLock.key_hash == account))
    return bool(getattr(done, "rowcount", 0))


def account_states(
    session: Session, keys: list[str], policy: ThrottlePolicy, now: datetime
) -> dict[str, AccountState]:
    """The accounts among ``keys`` with failures still counted, by key."""
    rows = session.execute(
        select(LoginLock).where(
            LoginLock.key_hash.in_(keys),
            LoginLock.last_failure_at > now - policy.forget_after,
        )
    ).scalars()
    return {row.key_hash: AccountState(row.failures, row.locked_until) for row in rows}
