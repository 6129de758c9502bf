"""The opt-in background sync: a daemon thread that keeps the leases renewed.

It wakes when the client says a sync is due (the earliest ``refresh_after`` of the
licenses, or at once after a clock rollback or an unreadable document), waits a random
jitter so that a fleet of devices does not sync in the same second, and syncs. A
failure is retried after an exponential backoff with jitter, capped at
``max_backoff``. It never holds a lock that a license check needs, and
:meth:`AutoUpdater.stop` ends it promptly (it waits on an Event, not in ``sleep``).

With a push listener (:mod:`licentia.client._push`) it also syncs at once whenever
License Central says the container changed (:meth:`AutoUpdater.nudge`). While no push
stream is open (a server without push, a proxy that cuts streams, no network) it
polls instead: a conditional sync every ``poll_interval``, which costs a 304 when
nothing changed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from licentia.client._exceptions import LicentiaClientError

if TYPE_CHECKING:
    from licentia.client._push import PushListener

__all__ = ["AutoUpdater"]

FIRST_BACKOFF = timedelta(seconds=30)


class AutoUpdater:
    """Runs ``sync`` whenever ``seconds_until_due`` reaches 0 (None: nothing to sync).

    ``on_tick`` runs on every wake-up (the client persists its time mark there).
    """

    def __init__(
        self,
        sync: Callable[[], object],
        seconds_until_due: Callable[[], float | None],
        *,
        jitter: timedelta,
        max_backoff: timedelta,
        check_interval: timedelta,
        on_tick: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
        poll_interval: timedelta | None = None,
        push: Callable[[Callable[[], None]], PushListener] | None = None,
    ) -> None:
        """``poll_interval``: sync this often while no push stream is open (None: only
        when due). ``push`` builds the push listener from the callback it must call on
        a change. Raises ValueError for a negative jitter or a non-positive backoff,
        check interval or poll interval."""
        if jitter < timedelta(0) or max_backoff <= timedelta(0) or check_interval <= timedelta(0):
            raise ValueError("jitter must be >= 0, max_backoff and check_interval > 0")
        if poll_interval is not None and poll_interval <= timedelta(0):
            raise ValueError("poll_interval must be > 0")
        self._sync = sync
        self._seconds_until_due = seconds_until_due
        self._jitter = jitter.total_seconds()
        self._max_backoff = max_backoff.total_seconds()
        self._check_interval = check_interval.total_seconds()
        self._on_tick = on_tick
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._poll = poll_interval.total_seconds() if poll_interval is not None else None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop() and nudge()
        self._pushed = threading.Event()  # a change was announced: sync at once
        self._thread: threading.Thread | None = None
        self._just_synced = False
        self._last_attempt = self._retry_at = time.monotonic()
        self.failures = 0
        self.last_error: LicentiaClientError | None = None
        self.pushed_syncs = 0  # syncs that a push started
        self.push = push(self.nudge) if push is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; does nothing if it runs already."""
        if self.running:
            return
        self._stop.clear()
        self._last_attempt = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="licentia-auto-update", daemon=True)
        self._thread.start()
        if self.push is not None:
            self.push.start()

    def nudge(self) -> None:
        """Sync as soon as possible: License Central announced a change (any thread)."""
        self._pushed.set()
        self._wake.set()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the thread to stop and wait for it (a sync in flight finishes first)."""
        self._stop.set()
        self._wake.set()
        if self.push is not None:
            self.push.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self._stop.is_set():
                return
            self._on_tick()
            if self.failures and time.monotonic() < self._retry_at:
                continue  # a push during a backoff waits for its end (a loop stays slow)
            pushed = self._pushed.is_set()
            self._pushed.clear()
            if pushed or self.failures or self._is_due() or self._poll_due():
                if pushed:
                    self.pushed_syncs += 1
                self._attempt()

    def _polling(self) -> bool:
        return self._poll is not None and (self.push is None or not self.push.connected)

    def _poll_due(self) -> bool:
        if not self._polling() or self._seconds_until_due() is None:
            return False
        assert self._poll is not None
        return time.monotonic() - self._last_attempt >= self._poll

    def _next_wait(self) -> float:
        """Seconds to sleep before the next look: a backoff after failures, else until
        the due time (plus jitter once it is reached) or the next poll, re-checked at
        least every ``check_interval`` because the clock or the licenses may change
        meanwhile. A push or :meth:`stop` ends the wait early."""
        if self.failures:
            return max(0.0, self._retry_at - time.monotonic())
        if self._pushed.is_set():
            return 0.0
        wait = self._until_due()
        if self._polling():
            assert self._poll is not None
            wait = min(wait, max(0.0, self._last_attempt + self._poll - time.monotonic()))
        return wait

    def _until_due(self) -> float:
        due = self._seconds_until_due()
        if due is None:
            return self._check_interval
        if due <= 0 and self._just_synced:
            # Still due right after a sync (the clock runs ahead of the server's):
            # syncing again at once would only hammer License Central.
            self._just_synced = False
            return self._check_interval
        if due <= 0:
            return self._rng.uniform(0, self._jitter)
        self._just_synced = False
        return min(due, self._check_interval)

    def _is_due(self) -> bool:
        due = self._seconds_until_due()
        return due is not None and due <= 0

    def _backoff(self) -> float:
        ceiling = min(self._max_backoff, FIRST_BACKOFF.total_seconds() * 2 ** (self.failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def _attempt(self) -> None:
        self._last_attempt = time.monotonic()
        try:
            self._sync()
        except LicentiaClientError as error:
            self.failures, self.last_error = self.failures + 1, error
            self._retry_at = time.monotonic() + self._backoff()
        except Exception as error:  # the thread must survive anything
            self.failures += 1
            self.last_error = LicentiaClientError(
                "AUTO_UPDATE_FAILED", f"The background sync failed unexpectedly: {error!r}."
            )
            self._retry_at = time.monotonic() + self._backoff()
        else:
            self.failures, self.last_error, self._just_synced = 0, None, True
