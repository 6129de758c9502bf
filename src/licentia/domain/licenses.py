"""The license state machine.

    available ──activate──▶ activated ──return──▶ returned ──activate──▶ activated
        │                       │                     │
        └────────── suspend ────┴─────────────────────┘──▶ suspended ──resume──▶ (state before)
    any live state ──withdraw──▶ withdrawn        (final)
    any live state ──replace───▶ replaced         (final; a new license takes its place)

``expired`` is not stored: a live license whose ``valid_until`` has passed *is*
expired (see ``effective_state``), so no sweeper has to run for it to be true, and
extending it makes it live again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from licentia.domain.errors import DateOutOfRangeError, IllegalTransitionError, ValidationError

# No validity ends later than this (a template's fixed end is at most the day before).
# Far enough for any real term, and far enough from the calendar's end (year 9999) that
# every lease, token or document derived from a validity end can still be computed.
LATEST_VALID_UNTIL = datetime(3000, 1, 1, tzinfo=UTC)


class LicenseState(StrEnum):
    AVAILABLE = "available"
    ACTIVATED = "activated"
    RETURNED = "returned"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"
    REPLACED = "replaced"
    EXPIRED = "expired"


LIVE = frozenset({LicenseState.AVAILABLE, LicenseState.ACTIVATED, LicenseState.RETURNED})
FINAL = frozenset({LicenseState.WITHDRAWN, LicenseState.REPLACED})

_TRANSITIONS: dict[str, frozenset[LicenseState]] = {
    "activate": frozenset({LicenseState.AVAILABLE, LicenseState.RETURNED}),
    "return": frozenset({LicenseState.ACTIVATED}),
    "suspend": LIVE | {LicenseState.EXPIRED},
    "resume": frozenset({LicenseState.SUSPENDED}),
    "extend": LIVE | {LicenseState.EXPIRED, LicenseState.SUSPENDED},
    "withdraw": LIVE | {LicenseState.EXPIRED, LicenseState.SUSPENDED},
    "replace": LIVE | {LicenseState.EXPIRED, LicenseState.SUSPENDED},
}

_TARGET = {
    "activate": LicenseState.ACTIVATED,
    "return": LicenseState.RETURNED,
    "suspend": LicenseState.SUSPENDED,
    "withdraw": LicenseState.WITHDRAWN,
    "replace": LicenseState.REPLACED,
}


def effective_state(
    stored: LicenseState, valid_until: datetime | None, now: datetime
) -> LicenseState:
    """The state a user sees: a live license past its validity end is expired."""
    if stored in LIVE and valid_until is not None and valid_until <= now:
        return LicenseState.EXPIRED
    return stored


def check_transition(action: str, current: LicenseState) -> None:
    """Raise IllegalTransitionError (naming ``current``) if ``action`` is not allowed now."""
    if current not in _TRANSITIONS[action]:
        raise IllegalTransitionError(action, current.value)


VENDOR_ACTIONS = ("suspend", "resume", "extend", "withdraw", "replace")


def allowed_actions(current: LicenseState) -> frozenset[str]:
    """The vendor's actions the state machine allows on a license that is ``current``."""
    return frozenset(action for action in VENDOR_ACTIONS if current in _TRANSITIONS[action])


def target_state(
    action: str, current: LicenseState, before_suspend: LicenseState | None
) -> LicenseState:
    """The stored state after ``action`` (already checked) is applied to ``current``."""
    if action == "resume":
        return before_suspend or LicenseState.AVAILABLE
    return _TARGET.get(action, current)


def extended_until(
    valid_until: datetime | None, *, until: datetime | None, days: int | None, now: datetime
) -> datetime:
    """The new validity end of an extension, to a date or by a number of days.

    Raises ValidationError if neither or both are given, or if the result would not
    lie in the future or would shorten the license; DateOutOfRangeError if it would
    lie beyond LATEST_VALID_UNTIL.
    """
    if (until is None) == (days is None):
        raise ValidationError("give exactly one of 'until' and 'days'", field="until")
    if days is not None:
        if days <= 0:
            raise ValidationError("'days' must be positive", field="days")
        base = valid_until if valid_until is not None and valid_until > now else now
        if timedelta(days=days) > LATEST_VALID_UNTIL - base:
            raise _beyond_range("days")
        return base + timedelta(days=days)
    assert until is not None
    if until <= now:
        raise ValidationError("'until' must lie in the future", field="until")
    if valid_until is not None and until < valid_until:
        raise ValidationError("an extension cannot shorten the license", field="until")
    if until > LATEST_VALID_UNTIL:
        raise _beyond_range("until")
    return until


def _beyond_range(field: str) -> DateOutOfRangeError:
    return DateOutOfRangeError(
        f"a license cannot be valid beyond {LATEST_VALID_UNTIL.isoformat()}", field=field
    )
