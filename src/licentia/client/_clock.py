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

A license check must not wait for the disk, so the client keeps the mark in memory
(:class:`CachedMark`) and a background writer persists it whenever it has moved far
enough, and on :meth:`CachedMark.flush`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from licentia.client._exceptions import ClockRollbackError

__all__ = [
    "DEFAULT_ROLLBACK_TOLERANCE",
    "CachedMark",
    "DeviceTime",
    "DiscardedMark",
    "TimeHighWaterMark",
    "TrustedClock",
    "system_clock",
]

DEFAULT_ROLLBACK_TOLERANCE = timedelta(hours=2)
_NO_TIME = timedelta(0)

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
        if tolerance < _NO_TIME:
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


class CachedMark:
    """A high-water mark held in memory and persisted to ``backing`` in the background.

    Reads and writes touch memory only. A write that moves the mark at least
    ``persist_step`` away from the persisted value wakes a daemon writer thread, so a
    caller never waits for the disk; :meth:`flush` persists synchronously (the client
    calls it on sync and on close). ``last_error`` keeps the writer's last failure.
    ``on_unsaved(mark)`` is called once, at the first write: from then on the mark may
    hold a value the backing does not (the client arranges a last flush then).
    """

    def __init__(
        self,
        backing: TimeHighWaterMark,
        value: datetime | None,
        *,
        persist_step: timedelta = timedelta(minutes=10),
        on_unsaved: Callable[[CachedMark], object] | None = None,
    ) -> None:
        self._backing = backing
        self._value = value
        self._persisted = value
        self._step = persist_step
        self._on_unsaved = on_unsaved
        self._lock = threading.Lock()
        # Made with the writer: most clients never move the mark far enough to need one.
        self._wake: threading.Event | None = None
        self._closed = False
        self._writer: threading.Thread | None = None
        self.last_error: Exception | None = None

    def read_time_high_water(self) -> datetime | None:
        return self._value

    def write_time_high_water(self, value: datetime) -> None:
        self._value = value
        on_unsaved, self._on_unsaved = self._on_unsaved, None
        if on_unsaved is not None:
            on_unsaved(self)
        persisted = self._persisted
        if persisted is None or abs(value - persisted) >= self._step:
            self._wake_writer()

    def note_persisted(self, value: datetime) -> None:
        """``value`` was written to the backing store by someone else (an update)."""
        with self._lock:
            self._persisted = value
            self._value = value

    def flush(self) -> None:
        """Persist the current value now, if it changed. Raises what the backing raises."""
        with self._lock:
            value = self._value
            if value is None or value == self._persisted:
                return
            self._backing.write_time_high_water(value)
            self._persisted = value

    def close(self) -> None:
        """Stop the writer and persist a last time (errors are kept in ``last_error``)."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout=5)
        self.flush_quietly()

    def _wake_writer(self) -> None:
        if self._closed:
            return
        if self._wake is None:
            with self._lock:
                if self._wake is None:
                    wake = threading.Event()
                    self._writer = threading.Thread(
                        target=self._write_loop,
                        args=(wake,),
                        name="licentia-time-mark",
                        daemon=True,
                    )
                    self._writer.start()
                    self._wake = wake
        self._wake.set()

    def _write_loop(self, wake: threading.Event) -> None:
        while not self._closed:
            wake.wait()
            wake.clear()
            self.flush_quietly()

    def flush_quietly(self) -> None:
        # A failed write only delays persistence; the next sync or flush retries it.
        try:
            self.flush()
        except Exception as error:
            self.last_error = error


class DiscardedMark:
    """A mark that keeps nothing, for a store that could not be opened (the client
    refuses every check then, so no time is ever trusted from it)."""

    def read_time_high_water(self) -> datetime | None:
        return None

    def write_time_high_water(self, value: datetime) -> None:
        return None


class DeviceTime:
    """The device's clocks together: the local clock, the high-water mark kept in memory,
    and the trusted clock over both."""

    def __init__(self, mark: CachedMark, local_clock: Callable[[], datetime]) -> None:
        self.mark = mark
        self.trusted = TrustedClock(mark, local_clock=local_clock)
        self._local_clock = local_clock

    def local(self) -> datetime:
        """The local clock in UTC (what the device stamps on its messages)."""
        return _aware(self._local_clock(), "the local clock").astimezone(UTC)

    def latest(self) -> datetime:
        """The later of the local clock and the mark, without the rollback check."""
        mark, local = self.mark.read_time_high_water(), self.local()
        return local if mark is None else max(local, mark)

    def rollback(self) -> ClockRollbackError | None:
        """The rollback error the trusted clock raises now, or None."""
        try:
            self.trusted.now()
        except ClockRollbackError as error:
            return error
        return None

    def persisted(self, mark: datetime, *, server_time: bool) -> None:
        """``mark`` was written to the store with an update. Signed server time from an
        online answer is authoritative (see :meth:`TrustedClock.record_server_time`)."""
        self.mark.note_persisted(mark)
        if server_time:
            self.trusted.record_server_time(mark)
