"""Retries with exponential backoff and full jitter.

After an outage every client of a team retries at once. With a fixed or merely
exponential schedule they keep retrying in lockstep and hit License Central in
waves; *full jitter* draws each delay uniformly from ``[0, min(cap, base * 2**n)]``,
which spreads the retries over the whole window and keeps the total load low.

Only failures that may heal are retried: License Central unreachable
(:class:`NetworkError`), overloaded or restarting (HTTP 5xx, 429). A refusal such as
``NO_SEAT_AVAILABLE`` or ``UNITS_EXHAUSTED`` is an answer, not a failure, and is
raised at once. Retrying is only safe for operations that are idempotent on the
server: the SDK sends the same idempotency key (consumptions), the same holder
identity (seat checkouts) or the same lease and fence (heartbeats) on every attempt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from licentia.client._exceptions import LicentiaClientError, NetworkError, ServerError

__all__ = ["RetryPolicy", "is_transient", "retry_call"]

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    ``attempts`` counts the first try; ``base`` and ``cap`` bound the delays (seconds);
    ``budget`` bounds the total time spent sleeping between attempts, so a caller
    never waits much longer than it expects.
    """

    attempts: int = 6
    base: float = 0.25
    cap: float = 8.0
    budget: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy makes at least one attempt")
        if self.base <= 0 or self.cap < self.base or self.budget < 0:
            raise ValueError("retry delays must be positive and the cap at least the base")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The sleeps between attempts: at most ``attempts - 1`` of them, full jitter,
        stopping early when the next one would exceed ``budget``."""
        draw = (rng or _RANDOM).uniform
        spent = 0.0
        for attempt in range(self.attempts - 1):
            delay = draw(0.0, min(self.cap, self.base * 2**attempt))
            if spent + delay > self.budget:
                return
            spent += delay
            yield delay


NO_RETRY = RetryPolicy(attempts=1)
_RANDOM = random.SystemRandom()


def is_transient(error: Exception) -> bool:
    """True for failures worth retrying: no connection, or License Central overloaded."""
    if isinstance(error, NetworkError):
        return True
    if isinstance(error, ServerError):
        return error.status is not None and (error.status >= 500 or error.status == 429)
    return False


def retry_call(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    transient: Callable[[Exception], bool] = is_transient,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Return ``call()``, retrying it after transient failures as ``policy`` allows.

    Raises the last failure when the attempts or the budget run out, and any other
    error at once. ``call`` must be safe to repeat (see the module docstring).
    """
    delays = policy.delays(rng)
    while True:
        try:
            return call()
        except LicentiaClientError as error:
            if not transient(error):
                raise
            delay = next(delays, None)
            if delay is None:
                raise
        sleep(delay)
