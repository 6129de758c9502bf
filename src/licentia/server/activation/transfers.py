"""The transfer limit of a device license: how often it may be returned from one
computer (to be activated on another) within a period, and how many of those moves
are left now. The return refuses a move beyond the limit; the License Portal shows
the same figures before the customer acts, so both read them here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.errors import ConflictError
from licentia.domain.templates import StoredOptions
from licentia.server.devices.models import LicenseReturn
from licentia.server.licenses.models import License


@dataclass(frozen=True)
class TransferAllowance:
    """A license's moves: ``returns`` allowed in any ``period_days``, ``used`` of them
    in the last ``period_days``; when none is left, ``next_free_at`` is when the
    oldest counted move leaves the period."""

    returns: int
    period_days: int
    used: int
    next_free_at: datetime | None

    @property
    def left(self) -> int:
        return max(0, self.returns - self.used)


def _limit(options: Mapping[str, Any]) -> tuple[int, int] | None:
    limit = StoredOptions(dict(options)).transfer_limit
    return None if not limit else (int(limit["returns"]), int(limit["period_days"]))


def _allowance(limit: tuple[int, int], moves: list[datetime], now: datetime) -> TransferAllowance:
    returns, period_days = limit
    since = now - timedelta(days=period_days)
    counted = sorted(at for at in moves if at >= since)
    used = len(counted)
    next_free = None
    if used >= returns and counted:
        next_free = counted[used - returns] + timedelta(days=period_days)
    return TransferAllowance(returns, period_days, used, next_free)


def transfer_allowances(
    session: Session, licenses: Iterable[tuple[str, Mapping[str, Any]]], now: datetime
) -> dict[str, TransferAllowance]:
    """The allowance of each ``(license id, stored options)`` whose template limits
    transfers (licenses without a limit are left out), from one query."""
    limits = {license_id: _limit(options) for license_id, options in licenses}
    limited = {license_id: limit for license_id, limit in limits.items() if limit is not None}
    if not limited:
        return {}
    longest = max(period for _, period in limited.values())
    moves: dict[str, list[datetime]] = {license_id: [] for license_id in limited}
    for license_id, returned_at in session.execute(
        select(LicenseReturn.license_id, LicenseReturn.returned_at).where(
            LicenseReturn.license_id.in_(limited),
            LicenseReturn.returned_at >= now - timedelta(days=longest),
        )
    ):
        moves[license_id].append(returned_at)
    return {
        license_id: _allowance(limit, moves[license_id], now)
        for license_id, limit in limited.items()
    }


def transfer_allowance(
    session: Session, license_: License, now: datetime
) -> TransferAllowance | None:
    """The license's allowance, or None when its template sets no transfer limit."""
    return transfer_allowances(session, [(license_.id, license_.options)], now).get(license_.id)


def check_transfer_allowed(
    session: Session, license_: License, now: datetime
) -> TransferAllowance | None:
    """Raises ConflictError ``TRANSFER_LIMIT_REACHED`` when no move is left."""
    allowance = transfer_allowance(session, license_, now)
    if allowance is not None and allowance.left == 0:
        raise ConflictError(
            f"this license was already moved {allowance.used} times in the last "
            f"{allowance.period_days} days",
            code="TRANSFER_LIMIT_REACHED",
            returns=allowance.returns,
            period_days=allowance.period_days,
        )
    return allowance
