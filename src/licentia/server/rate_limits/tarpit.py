"""Holding back the refusals of a client that keeps coming back (a tarpit).

A refusal costs the server little, but not nothing: a guesser that sends its next
request as soon as its 429 arrives gets thousands of them a second, and the one event
loop of a server process spends its time answering them while everyone else's
requests wait in line (docs/benchmarks.md, "A flood of guessers"). So the first
refusal of a client address is answered at once, with its ``Retry-After``; a client
refused again before that time has passed gets its next refusals only after
``seconds`` (never longer than its ``Retry-After``). A client that waits as it is told
never notices; one that does not is slowed to a request per ``seconds`` per connection.
The same holds for a guessing family's ``503 FAMILY_BUSY`` and for a failed guess (a
wrong password, an unknown ticket code: :mod:`licentia.server.api.limiting`), whose
"Retry-After" is ``seconds``: a guesser gets one failure at once, then one every
half ``seconds`` to ``seconds`` per connection, while a right guess is never held.

Each held refusal waits a random time between half of its hold and all of it, so that
the refusals of many clients that arrived together (a flood starting, a wave of held
refusals answered) are not all answered together again, to come back together.

A held refusal holds nothing but its connection and a timer: no thread, no database
connection, no body read. A client address holds at most
``LICENTIA_MAX_CONNECTIONS_PER_ADDRESS`` connections, so at most that many of its
refusals wait at once; and at most ``max_held`` refusals wait in a process whatever
their addresses (a client that closes its connections while they wait, or many
clients behind a trusted proxy): beyond, refusals are answered at once, as before.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable

from licentia.server.settings import Settings

_SWEEP_EVERY = 1.0  # seconds between two sweeps of the refusals that have ended


class Tarpit:
    """The addresses refused lately, and the refusals held back at this moment."""

    def __init__(
        self,
        seconds: float,
        max_held: int,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self.seconds = seconds
        self.max_held = max_held
        self.held = 0  # refusals waiting now
        self._sleep = sleep
        self._clock = clock
        self._uniform = uniform
        self._refused_until: dict[str, float] = {}  # address: the end of its Retry-After
        self._swept_at = -math.inf

    @classmethod
    def of(cls, settings: Settings) -> Tarpit:
        """``LICENTIA_RATE_LIMIT_HOLD_SECONDS``; at most half of the process's
        connections wait at once, so that held refusals never take them all."""
        return cls(settings.rate_limit_hold_seconds, max(1, settings.max_connections // 2))

    def delay(self, address: str, retry_after: float) -> float:
        """Note that ``address`` is refused with ``retry_after`` seconds; how long to
        hold this refusal back: 0 for the first of its refusals (or when ``max_held``
        are waiting already), else between half of ``seconds`` (or of ``retry_after``
        when shorter) and all of it."""
        now = self._clock()
        until = self._refused_until.get(address, -math.inf)
        if until <= now:  # a first refusal, or one after a Retry-After it waited out
            self._refused_until[address] = now + retry_after
            self._sweep(now)
            return 0.0
        if self.held >= self.max_held:
            return 0.0
        longest = min(self.seconds, retry_after)
        return self._uniform(longest / 2, longest)

    async def hold(self, address: str | None, retry_after: float) -> None:
        """Return once this refusal of ``address`` may be answered (see :meth:`delay`)."""
        seconds = self.delay(address or "unknown", retry_after)
        if seconds <= 0:
            return
        self.held += 1
        try:
            await self._sleep(seconds)
        finally:
            self.held -= 1

    def _sweep(self, now: float) -> None:
        """Forget the addresses whose Retry-After has passed, at most once a second, so
        that addresses refused once do not pile up."""
        if now - self._swept_at < _SWEEP_EVERY:
            return
        self._swept_at = now
        for address in [a for a, until in self._refused_until.items() if until <= now]:
            del self._refused_until[address]
