"""Counting requests with the ``limits`` library, in the process's memory (one node)
or in Redis (several processes and nodes share the counts).

Each family's limits count per client address and, apart, per credential (an API
key, a session token, a device's token, a container credential): a guesser behind
one address, and a credential used from many addresses, each meet the limit. A
credential is counted under a digest (in one process's memory, under its ``hash()``,
salted per process), so no storage ever holds it in clear.

In one process's memory, a count is an increment done at once: the library's memory
storage would also start a task to expire old counts at every count, which cost the
hottest call more than the count itself (docs/benchmarks.md, "Abuse limits"); here
expired counts are dropped when next counted, and all of them once a second.

When the storage fails (Redis unreachable), requests are served uncounted and the
failure is logged: the limits protect the service, and must not become what stops it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from limits.errors import StorageError
from limits.storage import StorageTypes, storage_from_string

from licentia.domain.errors import RateLimitedError
from licentia.server.rate_limits.families import Family
from licentia.server.settings import Settings

log = logging.getLogger("licentia.rate_limits")
STRATEGIES: dict[str, type[RateLimiter]] = {
    "fixed-window": FixedWindowRateLimiter,
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
}
KEY_PREFIX = "licentia"
_LOG_EVERY = 60.0  # seconds between two logs of a failing storage
_SWEEP_EVERY = 1.0  # seconds between two sweeps of expired counts in memory


class CountingMemoryStorage(MemoryStorage):
    """The library's memory storage, counting without a task per count.

    An increment has no ``await`` in it, so on the event loop it cannot interleave
    with another and needs no lock. The counts that expired are dropped together at
    most once every ``_SWEEP_EVERY`` seconds, so addresses and credentials seen once
    do not pile up."""

    _swept_at: float = -math.inf

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self.count(key, expiry, time.time(), amount)

    def count(self, key: str, expiry: float, now: float, amount: int = 1) -> int:
        """:meth:`incr` at ``now`` (``time.time()``) without a coroutine: what a fixed
        window counts per request."""
        if self.expirations.get(key, 0) <= now:
            self.storage[key] = amount
            self.expirations[key] = now + expiry
            if now - self._swept_at >= _SWEEP_EVERY:
                self._sweep(now)
            return amount
        self.storage[key] += amount
        return self.storage[key]

    def _sweep(self, now: float) -> None:
        self._swept_at = now
        for key in [k for k, at in self.expirations.items() if at <= now]:
            self.storage.pop(key, None)
            self.expirations.pop(key, None)
            self.locks.pop(key, None)


def storage_for(url: str) -> StorageTypes:
    """The asynchronous storage for ``LICENTIA_RATE_LIMIT_STORAGE``: ``memory://`` or a
    Redis URL (spoken to with redis-py's asyncio client, each call bounded by a
    timeout so that a stalled Redis stalls no request for long)."""
    if url.startswith("memory://"):
        return CountingMemoryStorage("async+memory://", wrap_exceptions=True)
    return storage_from_string(
        f"async+{url}",
        implementation="redispy",
        key_prefix=KEY_PREFIX,
        wrap_exceptions=True,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
    )


@dataclass(frozen=True)
class _Window:
    """One limit of one family, counted in a fixed window of the process's memory: the
    library's key for it, cut around the identifier, and its expiry, made once."""

    item: RateLimitItem
    before: str
    after: str
    expiry: int

    @classmethod
    def of(cls, item: RateLimitItem, family: Family) -> _Window:
        before, after = item.key_for(family.value, "\x00").split("\x00")
        return cls(item, before, after, item.get_expiry())


@dataclass
class Limiter:
    """The limits of every family and the strategy that counts them."""

    strategy: RateLimiter
    limits: Mapping[Family, tuple[RateLimitItem, ...]]
    _failed_at: float = -math.inf
    # The fixed window in memory (the default) is counted without the library's
    # coroutines, under the keys it would use: a count on every hot call is a dict
    # update, and its window statistics still come from the library.
    _windows: Mapping[Family, tuple[_Window, ...]] | None = None

    def __post_init__(self) -> None:
        storage = self.strategy.storage
        if type(self.strategy) is FixedWindowRateLimiter and isinstance(
            storage, CountingMemoryStorage
        ):
            self._memory = storage
            self._windows = {
                family: tuple(_Window.of(item, family) for item in items)
                for family, items in self.limits.items()
            }

    @classmethod
    def of(cls, settings: Settings) -> Limiter | None:
        """The operator's limits (``LICENTIA_RATE_LIMIT_*``); None when they are off."""
        if not settings.rate_limits:
            return None
        storage = storage_for(settings.rate_limit_storage)
        limits = {family: _parsed(getattr(settings, family.setting)) for family in Family}
        return cls(STRATEGIES[settings.rate_limit_strategy](storage), limits)

    async def refusal(
        self, families: tuple[Family, ...], address: str | None, credential: str | None
    ) -> RateLimitedError | None:
        """Count one request of ``families`` from ``address`` with ``credential``; the
        error to answer when one of their limits is reached, else None."""
        if self._windows is not None:
            reached = self._counted_in_memory(families, address, credential)
            if reached is None:
                return None
            family, item, key = reached
            return RateLimitedError(family.value, await self._seconds_to_reset(item, key))
        who = [f"address/{address or 'unknown'}"]
        if credential:
            who.append(f"credential/{_digest(credential)}")
        try:
            for family in families:
                for item in self.limits[family]:
                    for key in who:
                        # One identifier per key: the library builds its key from them.
                        if not await self.strategy.hit(item, f"{family.value}/{key}"):
                            wait = await self._seconds_to_reset(item, f"{family.value}/{key}")
                            return RateLimitedError(family.value, wait)
        except StorageError as error:
            self._log_failure(error)
        return None

    def _counted_in_memory(
        self, families: tuple[Family, ...], address: str | None, credential: str | None
    ) -> tuple[Family, RateLimitItem, str] | None:
        """Count in the fixed windows of this process's memory; the family, limit and
        identifier of the first limit reached, else None. A credential is counted under
        its salted ``hash()``: it never leaves the process, and is not kept in clear."""
        assert self._windows is not None
        who = [f"address/{address or 'unknown'}"]
        if credential:
            who.append(f"credential/{hash(credential):x}")
        count, now = self._memory.count, time.time()
        for family in families:
            for window in self._windows[family]:
                for key in who:
                    if count(f"{window.before}{key}{window.after}", window.expiry, now) > (
                        window.item.amount
                    ):
                        return family, window.item, f"{family.value}/{key}"
        return None

    async def _seconds_to_reset(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = await self.strategy.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def _log_failure(self, error: StorageError) -> None:
        now = time.monotonic()
        if now - self._failed_at >= _LOG_EVERY:
            self._failed_at = now
            log.warning("rate limit storage failed, requests are served uncounted: %s", error)


def _parsed(notation: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(notation)) if notation.strip() else ()


def _digest(credential: str) -> str:
    return hashlib.blake2b(credential.encode(), digest_size=16).hexdigest()
