"""What a timed load phase saw (``LoadResult``), and an httpx client for set-up calls.

The load itself comes from wrk (bench/wrk.py), aiohttp (bench/devices.py) and a lean
client of our own (bench/http.py, for bench/seats.py): the httpx loop that was here
cost the server's cores 1.5 to 2 ms of CPU per request.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import httpx


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

    def merge(self, other: LoadResult) -> LoadResult:
        """Both phases' answers, as one phase of both durations."""
        return LoadResult(
            self.seconds + other.seconds,
            self.latencies + other.latencies,
            self.errors + other.errors,
            self.first_error or other.first_error,
        )

    def percentile_ms(self, q: float) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1e3 if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1e3


def client_for(base_url: str, api_key: str, concurrency: int) -> httpx.AsyncClient:
    """One pooled client; each worker keeps a connection of its own."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers={"Authorization": f"Bearer {api_key}"},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=httpx.Timeout(60.0),
    )
