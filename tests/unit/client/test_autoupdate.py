"""The background sync's schedule: when it syncs, how it backs off, how it stops."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from licentia.client import NetworkError
from licentia.client._autoupdate import AutoUpdater

FAST = timedelta(milliseconds=10)


def _updater(
    sync: Callable[[], object],
    due: Callable[[], float | None],
    *,
    max_backoff: timedelta = timedelta(milliseconds=40),
) -> AutoUpdater:
    return AutoUpdater(sync, due, jitter=FAST, max_backoff=max_backoff, check_interval=FAST)


def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_nothing_is_synced_before_it_is_due() -> None:
    calls: list[float] = []
    updater = _updater(lambda: calls.append(time.monotonic()), lambda: 3600.0)

    updater.start()
    time.sleep(0.2)
    updater.stop()

    assert calls == []


def test_a_container_with_nothing_to_sync_is_left_alone() -> None:
    calls: list[float] = []
    updater = _updater(lambda: calls.append(time.monotonic()), lambda: None)

    updater.start()
    time.sleep(0.1)
    updater.stop()

    assert calls == []


def test_a_due_sync_runs_and_the_next_waits_for_the_next_due_time() -> None:
    due = [0.0]
    calls: list[float] = []

    def sync() -> None:
        calls.append(time.monotonic())
        due[0] = 3600.0  # the sync renewed the leases

    updater = _updater(sync, lambda: due[0])
    updater.start()
    assert _wait_until(lambda: len(calls) == 1)
    time.sleep(0.2)
    updater.stop()

    assert len(calls) == 1
    assert (updater.failures, updater.last_error) == (0, None)


def test_a_failing_sync_is_retried_with_backoff_and_the_last_error_is_kept() -> None:
    calls: list[float] = []

    def sync() -> None:
        calls.append(time.monotonic())
        raise NetworkError()

    updater = _updater(sync, lambda: 0.0, max_backoff=timedelta(milliseconds=50))
    updater.start()
    assert _wait_until(lambda: len(calls) >= 5)
    updater.stop()

    assert isinstance(updater.last_error, NetworkError)
    assert updater.failures >= 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    # Full jitter between half the cap and the cap: never a tight loop.
    assert min(gaps) >= 0.02


def test_a_success_after_failures_clears_the_error() -> None:
    outcomes = [NetworkError(), NetworkError(), None]
    due = [0.0]

    def sync() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        due[0] = 3600.0

    updater = _updater(sync, lambda: due[0])
    updater.start()
    assert _wait_until(lambda: not outcomes)
    assert _wait_until(lambda: updater.last_error is None)
    updater.stop()

    assert updater.failures == 0


def test_an_unexpected_exception_does_not_kill_the_thread() -> None:
    calls: list[int] = []

    def sync() -> None:
        calls.append(1)
        raise RuntimeError("boom")

    updater = _updater(sync, lambda: 0.0)
    updater.start()
    assert _wait_until(lambda: len(calls) >= 2)
    updater.stop()

    assert updater.last_error is not None
    assert updater.last_error.code == "AUTO_UPDATE_FAILED"


def test_stop_ends_a_long_wait_at_once() -> None:
    updater = AutoUpdater(
        lambda: None,
        lambda: 86_400.0,
        jitter=timedelta(0),
        max_backoff=timedelta(hours=1),
        check_interval=timedelta(hours=1),
    )
    updater.start()
    assert updater.running

    started = time.monotonic()
    updater.stop()

    assert time.monotonic() - started < 1.0
    assert not updater.running


def test_starting_twice_runs_one_thread() -> None:
    updater = _updater(lambda: None, lambda: 3600.0)
    updater.start()
    updater.start()

    names = [t.name for t in threading.enumerate() if t.name == "licentia-auto-update"]
    updater.stop()

    assert len(names) == 1
