"""The churn limit of a device license (template option ``churn_limit``): at most
``count`` activations and returns of one license within ``days`` days. A period
begins with the first activation or return after the previous one ended and lasts
``days``; once ``count`` were made in it, the license can be neither activated nor
returned until it ends (``CHURN_LIMIT_REACHED``, with ``until``).

The database enforces it: the count moves by one conditional ``UPDATE`` of the
license's row (``churn_count``, ``churn_period_ends``, ``churn_full_until``), which
changes nothing when the period is full. Concurrent activations and returns of one
license therefore wait for each other's row lock and each sees the count the one
before left; no count is read first and written later. An activation never picks a
free license whose period is full (``_binding``), so it takes another of the ticket's
if one is left.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, or_, select, update

from licentia.domain.errors import ConflictError
from licentia.domain.templates import StoredOptions
from licentia.server.licenses.models import License

_LICENSE = License.__table__.c
_WHEN = _LICENSE.churn_full_until.type


@dataclass(frozen=True)
class Churn:
    """A license's activations and returns in its current period, after one more."""

    count: int
    limit: int
    period_ends: datetime

    def as_audited(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "limit": self.limit,
            "period_ends": self.period_ends.isoformat(),
        }


def churn_limit_reached(limit: Mapping[str, Any], until: datetime | None) -> ConflictError:
    """The error of a license whose period is full until ``until``."""
    count, days = int(limit.get("count", 0)), int(limit.get("days", 0))
    when = f" until {until.isoformat(timespec='seconds')}" if until else ""
    return ConflictError(
        f"this license reached its churn limit ({count} activations and returns in {days} "
        f"days); it cannot be activated or returned again{when}",
        code="CHURN_LIMIT_REACHED",
        count=count,
        days=days,
        until=until.isoformat() if until else None,
    )


def ensure_churn_left(license_: License, now: datetime) -> None:
    """Raises ConflictError ``CHURN_LIMIT_REACHED`` when the license's period is full
    (a check for a preview; the change itself is counted by :func:`count_churn`)."""
    limit = StoredOptions(license_.options).churn_limit
    full = license_.churn_full_until
    if limit is not None and full is not None and full > now:
        raise churn_limit_reached(limit, full)


def count_churn(
    connection: Connection, license_id: str, options: Mapping[str, Any], now: datetime
) -> Churn | None:
    """Count one activation or return of the license, if its template limits churn
    (None if not). Raises ConflictError ``CHURN_LIMIT_REACHED`` when its period is
    full: then nothing was counted, and the caller's transaction must not go on."""
    limit = StoredOptions(options).churn_limit
    if limit is None:
        return None
    row = connection.execute(
        _COUNT,
        {
            "license_id": license_id,
            "now": now,
            "new_period_ends": now + timedelta(days=int(limit["days"])),
            "limit": int(limit["count"]),
        },
    ).first()
    if row is None:
        full = connection.scalar(select(_LICENSE.churn_full_until).where(_LICENSE.id == license_id))
        raise churn_limit_reached(limit, full)
    return Churn(row.churn_count, int(limit["count"]), row.churn_period_ends)


def _count_statement() -> Any:
    now = bindparam("now", type_=_WHEN)
    over = or_(_LICENSE.churn_period_ends.is_(None), _LICENSE.churn_period_ends <= now)
    count = case((over, 1), else_=_LICENSE.churn_count + 1)
    ends = case((over, bindparam("new_period_ends", type_=_WHEN)), else_=_LICENSE.churn_period_ends)
    return (
        update(License)
        .where(
            _LICENSE.id == bindparam("license_id"),
            or_(_LICENSE.churn_full_until.is_(None), _LICENSE.churn_full_until <= now),
        )
        .values(
            churn_count=count,
            churn_period_ends=ends,
            churn_full_until=case((count >= bindparam("limit"), ends), else_=None),
        )
        .returning(_LICENSE.churn_count, _LICENSE.churn_period_ends)
    )


_COUNT = _count_statement()
