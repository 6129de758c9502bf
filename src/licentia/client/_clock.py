"""Trusted time: a high-water mark that a clock set back cannot get below.

The client keeps the latest trusted time it has seen — from its own clock, and from
signed server time after an online sync — in a :class:`TimeHighWaterMark` (the device
store implements it). :meth:`TrustedClock.now` then:

- returns ``max(local clock, mark)`` while the local clock is no more than
  ``tolerance`` behind the mark, so setting the clock back a little never extends a
  license, and moves the mark forward with the local clock;
- raises :class:`ClockRollbackError` once the local clock is further behind, so the
  application asks for an online sync instead of running on a rolled-back clock.

Signed server time is authoritative: :meth:`TrustedClock.record_server_time` sets the
mark to it even when that is lower. That is how an online sync clears a mark pushed
into the future by a clock that was once set forward. The caller verifies the server
time's signature before handing it over.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from licentia.client._exceptions import ClockRollbackError

__all__ = [
    "DEFAULT_ROLLBACK_TOLERANCE",
    "TimeHighWaterMark",
    "TrustedClock",
    "system_clock",
]

DEFAULT_ROLLBACK_TOLERANCE = timedelta(hours=2)

# Advancing the mark costs a durable write; doing it at most once a minute keeps license
# checks cheap, and a minute is nothing against a tolerance measured in hours.
_PERSIST_STEP = timedelta(minutes=1)


class TimeHighWaterMark(Protocol):
    """Where the high-water mark is kept (the device store, or a fake in tests)."""

    def read_time_high_water(self) -> datetime | None: ...

    def write_time_high_water(self, value: datetime) -> None: ...


def system_clock() -> datetime:
    """The local clock, in UTC."""
    return datetime.now(UTC)


class TrustedClock:
    """The time the client may rely on offline; see the module docstring."""

    def __init__(
        self,
        mark: TimeHighWaterMark,
        *,
        tolerance: timedelta = DEFAULT_ROLLBACK_TOLERANCE,
        local_clock: Callable[[], datetime] = system_clock,
    ) -> None:
        """Raises ValueError if ``tolerance`` is negative."""
        if tolerance < timedelta(0):
            raise ValueError("the clock rollback tolerance must not be negative")
        self._mark = mark
        self._tolerance = tolerance
        self._local_clock = local_clock

    @property
    def tolerance(self) -> timedelta:
        return self._tolerance

    def now(self) -> datetime:
        """The trusted current time (UTC), advancing the high-water mark.

        Raises ClockRollbackError if the local clock is more than ``tolerance`` behind
        the mark; nothing is recorded then.
        """
        local = _aware(self._local_clock(), "the local clock").astimezone(UTC)
        mark = self._mark.read_time_high_water()
        if mark is None:
            self._mark.write_time_high_water(local)
            return local
        if local < mark - self._tolerance:
            raise _rollback_error(local, mark)
        if local - mark >= _PERSIST_STEP:
            self._mark.write_time_high_water(local)
        return max(local, mark.astimezone(UTC))

    def record_server_time(self, server_time: datetime) -> None:
        """Adopt verified server time as the high-water mark, even if it is lower.

        Call it after an online sync with the time License Central signed; it clears a
        rollback error caused by a mark in the future. Raises ValueError if
        ``server_time`` is naive.
        """
        self._mark.write_time_high_water(_aware(server_time, "server time").astimezone(UTC))


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime")
    return value


def _rollback_error(local: datetime, mark: datetime) -> ClockRollbackError:
    hours = (mark - local).total_seconds() / 3600
    return ClockRollbackError(
        f"The system clock ({local:%Y-%m-%d %H:%M} UTC) is {hours:.1f} hours behind the "
        f"last trusted time ({mark.astimezone(UTC):%Y-%m-%d %H:%M} UTC). Correct the date "
        "and time, then connect to the internet so the license can sync."
    )
