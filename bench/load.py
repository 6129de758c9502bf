"""A bounded load generator: concurrent httpx clients on one event loop.

Each of ``concurrency`` workers sends one request after the other on its own
keep-alive connection until the deadline; the rate counts only the answers that
came back with the expected status, and the first unexpected answer is kept for the
report. Nothing here loops without a deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

Send = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


@dataclass
class LoadResult:
    """What one timed phase saw. ``latencies`` are seconds, one per good answer."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1e3 if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1e3

    def merge(self, other: LoadResult) -> LoadResult:
        return LoadResult(
            seconds=self.seconds + other.seconds,
            latencies=self.latencies + other.latencies,
            errors=self.errors + other.errors,
            first_error=self.first_error or other.first_error,
        )


async def drive(
    client: httpx.AsyncClient,
    send: Send,
    *,
    concurrency: int,
    seconds: float,
    expect: int,
    numbers: itertools.count[int] | None = None,
) -> LoadResult:
    """Run ``send`` from ``concurrency`` workers for ``seconds``; ``send`` gets a number
    unique within this run (``numbers``), e.g. to build a fresh external order id."""
    result = LoadResult()
    counter = numbers if numbers is not None else itertools.count()
    start = time.perf_counter()
    deadline = start + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            try:
                response = await send(client, next(counter))
            except httpx.HTTPError as error:
                _failed(result, f"{type(error).__name__}: {error}")
                continue
            if response.status_code == expect:
                result.latencies.append(time.perf_counter() - sent)
            else:
                _failed(result, f"HTTP {response.status_code}: {response.text[:300]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result


def _failed(result: LoadResult, message: str) -> None:
    result.errors += 1
    if result.first_error is None:
        result.first_error = message


def client_for(base_url: str, api_key: str, concurrency: int) -> httpx.AsyncClient:
    """One pooled client; each worker keeps a connection of its own."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {api_key}"},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=httpx.Timeout(60.0),
    )
