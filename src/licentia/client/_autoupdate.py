"""The opt-in background sync: a daemon thread that keeps the leases renewed.

It wakes when the client says a sync is due (the earliest ``refresh_after`` of the
licenses, or at once after a clock rollback or an unreadable document), waits a random
jitter so that a fleet of devices does not sync in the same second, and syncs. A
failure is retried after an exponential backoff with jitter, capped at
``max_backoff``. It never holds a lock that a license check needs, and
:meth:`AutoUpdater.stop` ends it promptly (it waits on an Event, not in ``sleep``).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta

from licentia.client._exceptions import LicentiaClientError

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
    ) -> None:
        """Raises ValueError for a negative jitter or a non-positive backoff or interval."""
        if jitter < timedelta(0) or max_backoff <= timedelta(0) or check_interval <= timedelta(0):
            raise ValueError("jitter must be >= 0, max_backoff and check_interval > 0")
        self._sync = sync
        self._seconds_until_due = seconds_until_due
        self._jitter = jitter.total_seconds()
        self._max_backoff = max_backoff.total_seconds()
        self._check_interval = check_interval.total_seconds()
        self._on_tick = on_tick
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._just_synced = False
        self.failures = 0
        self.last_error: LicentiaClientError | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; does nothing if it runs already."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="licentia-auto-update", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the thread to stop and wait for it (a sync in flight finishes first)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._stop.wait(self._next_wait()):
                return
            self._on_tick()
            if self.failures or self._is_due():
                self._attempt()

    def _next_wait(self) -> float:
        """Seconds to sleep before the next look: a backoff after failures, else until
        the due time (plus jitter once it is reached), re-checked at least every
        ``check_interval`` because the clock or the licenses may change meanwhile."""
        if self.failures:
            return self._backoff()
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
        try:
            self._sync()
        except LicentiaClientError as error:
            self.failures, self.last_error = self.failures + 1, error
        except Exception as error:  # the thread must survive anything
            self.failures += 1
            self.last_error = LicentiaClientError(
                "AUTO_UPDATE_FAILED", f"The background sync failed unexpectedly: {error!r}."
            )
        else:
            self.failures, self.last_error, self._just_synced = 0, None, True
