"""The login throttle, the same in front of the API and both web fronts.

Failed logins are counted per account (vendor and e-mail) and per source address in a
sliding window, in the database, so that several nodes share the count. Past the limit
a login is refused with ``LOGIN_THROTTLED`` before the password is even checked, so a
guesser learns nothing more; a success clears its account's count. The logins
themselves are in :mod:`licentia.server.logins.bounded`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from licentia.domain.errors import LoginThrottledError
from licentia.server.logins.models import LoginFailure
from licentia.server.settings import Settings


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
