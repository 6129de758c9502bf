"""Trusted time: a high-water mark that a clock set back cannot get below."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licentia.client import (
    DEFAULT_ROLLBACK_TOLERANCE,
    ClockRollbackError,
    DeviceStore,
    TrustedClock,
    hash_factors,
)
from licentia.client._clock import CachedMark

from .fakes import MemoryMark

NOON = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A local clock the test sets by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _clock(mark: MemoryMark, local: FakeClock) -> TrustedClock:
    return TrustedClock(mark, local_clock=local)


def test_the_first_reading_becomes_the_mark() -> None:
    mark = MemoryMark()

    assert _clock(mark, FakeClock(NOON)).now() == NOON
    assert mark.value == NOON


def test_the_mark_follows_the_clock_forward() -> None:
    mark, local = MemoryMark(NOON), FakeClock(NOON + timedelta(hours=5))

    assert _clock(mark, local).now() == NOON + timedelta(hours=5)
    assert mark.value == NOON + timedelta(hours=5)


def test_readings_close_together_do_not_rewrite_the_mark() -> None:
    mark, local = MemoryMark(NOON), FakeClock(NOON + timedelta(seconds=20))

    _clock(mark, local).now()

    assert (mark.value, mark.writes) == (NOON, 0)


def test_a_clock_set_back_within_the_tolerance_never_goes_below_the_mark() -> None:
    mark = MemoryMark(NOON)
    local = FakeClock(NOON - DEFAULT_ROLLBACK_TOLERANCE + timedelta(minutes=1))

    assert _clock(mark, local).now() == NOON
    assert mark.value == NOON


def test_a_clock_set_back_beyond_the_tolerance_is_a_rollback() -> None:
    mark, local = MemoryMark(NOON), FakeClock(NOON - timedelta(days=3))

    with pytest.raises(ClockRollbackError) as caught:
        _clock(mark, local).now()

    assert caught.value.code == "CLOCK_ROLLBACK"
    assert "72.0 hours behind" in caught.value.message
    assert "connect to the internet" in caught.value.message
    assert mark.value == NOON


@given(
    behind=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    tolerance=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
)
def test_a_rollback_is_reported_exactly_when_the_clock_is_further_behind_than_the_tolerance(
    behind: timedelta, tolerance: timedelta
) -> None:
    clock = TrustedClock(
        MemoryMark(NOON), tolerance=tolerance, local_clock=FakeClock(NOON - behind)
    )

    if behind > tolerance:
        with pytest.raises(ClockRollbackError):
            clock.now()
    else:
        assert clock.now() == NOON


def test_signed_server_time_clears_a_mark_left_in_the_future() -> None:
    # The clock was once set a year ahead, then corrected: offline, that looks like a rollback.
    mark, local = MemoryMark(NOON + timedelta(days=365)), FakeClock(NOON)
    clock = _clock(mark, local)
    with pytest.raises(ClockRollbackError):
        clock.now()

    clock.record_server_time(NOON - timedelta(seconds=3))

    assert clock.now() == NOON


def test_server_time_does_not_excuse_a_clock_that_is_still_wrong() -> None:
    clock = _clock(MemoryMark(), FakeClock(NOON - timedelta(days=30)))

    clock.record_server_time(NOON)

    with pytest.raises(ClockRollbackError):
        clock.now()


def test_times_without_a_timezone_are_refused() -> None:
    naive = datetime(2030, 3, 1, 12, 0)
    with pytest.raises(ValueError, match="timezone"):
        _clock(MemoryMark(), FakeClock(naive)).now()
    with pytest.raises(ValueError, match="timezone"):
        _clock(MemoryMark(), FakeClock(NOON)).record_server_time(naive)
    with pytest.raises(ValueError, match="tolerance"):
        TrustedClock(MemoryMark(), tolerance=timedelta(seconds=-1))


def test_a_rollback_is_detected_after_a_restart(tmp_path: Path) -> None:
    fingerprint = hash_factors({"machine_id": "3d1219c7c4c5404aaa1f6d2a48adfda4"}, b"acme")
    local = FakeClock(NOON)
    TrustedClock(DeviceStore.open(tmp_path, fingerprint=fingerprint), local_clock=local).now()

    local.now = NOON - timedelta(days=1)
    restarted = DeviceStore.open(tmp_path, fingerprint=fingerprint)

    with pytest.raises(ClockRollbackError):
        TrustedClock(restarted, local_clock=local).now()


# -- the mark kept in memory -----------------------------------------------------------


class ThreadRecordingMark(MemoryMark):
    """A backing mark that remembers which thread wrote to it."""

    def __init__(self, value: datetime | None = None) -> None:
        super().__init__(value)
        self.writers: list[str] = []

    def write_time_high_water(self, value: datetime) -> None:
        super().write_time_high_water(value)
        self.writers.append(threading.current_thread().name)


def _wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 5
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_license_checks_move_the_mark_in_memory_only() -> None:
    backing = ThreadRecordingMark(NOON)
    local = FakeClock(NOON)
    clock = TrustedClock(CachedMark(backing, NOON), local_clock=local)

    for minutes in range(1, 10):
        local.now = NOON + timedelta(minutes=minutes)
        assert clock.now() == local.now

    assert backing.writes == 0


def test_a_mark_that_moved_far_is_persisted_by_a_background_thread() -> None:
    backing = ThreadRecordingMark(NOON)
    mark = CachedMark(backing, NOON, persist_step=timedelta(minutes=10))
    local = FakeClock(NOON + timedelta(minutes=11))

    TrustedClock(mark, local_clock=local).now()

    assert _wait_for(lambda: backing.value == NOON + timedelta(minutes=11))
    assert backing.writers == ["licentia-time-mark"]
    mark.close()


def test_closing_persists_the_last_mark() -> None:
    backing = ThreadRecordingMark(NOON)
    mark = CachedMark(backing, NOON)
    local = FakeClock(NOON + timedelta(minutes=3))
    TrustedClock(mark, local_clock=local).now()

    mark.close()

    assert backing.value == NOON + timedelta(minutes=3)


def test_a_failing_backing_store_is_reported_not_raised() -> None:
    class Broken(MemoryMark):
        def write_time_high_water(self, value: datetime) -> None:
            raise OSError("disk full")

    mark = CachedMark(Broken(NOON), NOON)
    mark.write_time_high_water(NOON + timedelta(minutes=1))

    mark.close()

    assert isinstance(mark.last_error, OSError)
