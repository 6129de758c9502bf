"""Counting requests with the ``limits`` library, in the process's memory (one node)
or in Redis (several processes and nodes share the counts).

Each family's limits count per client address and, apart, per credential (an API
key, a session token, a device's token, a container credential): a guesser behind
one address, and a credential used from many addresses, each meet the limit. A
credential is counted under a digest, so no storage ever holds it in clear.

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


def storage_for(url: str) -> StorageTypes:
    """The asynchronous storage for ``LICENTIA_RATE_LIMIT_STORAGE``: ``memory://`` or a
    Redis URL (spoken to with redis-py's asyncio client, each call bounded by a
    timeout so that a stalled Redis stalls no request for long)."""
    if url.startswith("memory://"):
        return storage_from_string("async+memory://", wrap_exceptions=True)
    return storage_from_string(
        f"async+{url}",
        implementation="redispy",
        key_prefix=KEY_PREFIX,
        wrap_exceptions=True,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
    )


@dataclass
class Limiter:
    """The limits of every family and the strategy that counts them."""

    strategy: RateLimiter
    limits: Mapping[Family, tuple[RateLimitItem, ...]]
    _failed_at: float = -math.inf

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
