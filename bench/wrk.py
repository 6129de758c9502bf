"""Load from wrk, a C load generator, for the HTTP figures whose requests it can build.

The Python client that came first (httpx) spent 1.5 to 2 ms of CPU per request on the
same two cores as the server, so it measured itself as much as the server: /healthz
topped out near 530 req/s with it and above 2,500 with wrk. wrk is a Debian package
(``apt-get install wrk``; ``make bench`` installs it when it is missing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.server import BenchSetupError

SCRIPT = Path(__file__).with_name("wrk") / "request.lua"


@dataclass(frozen=True)
class Request:
    """One kind of request; ``{n}`` in ``body`` becomes a number unique in the run."""

    method: str
    path: str
    expect: int
    authorization: str = ""
    body: str = ""


@dataclass(frozen=True)
class WrkResult:
    """What one timed phase saw (rate, percentiles, errors), as bench.load.LoadResult."""

    ok: int
    seconds: float
    errors: int
    first_error: str | None
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        return self.p50_ms if q <= 50 else self.p99_ms

    def merge(self, other: WrkResult) -> WrkResult:
        """Counts add up; the percentiles are weighted by requests (an approximation)."""
        total = max(self.ok + other.ok, 1)
        return WrkResult(
            ok=self.ok + other.ok,
            seconds=self.seconds + other.seconds,
            errors=self.errors + other.errors,
            first_error=self.first_error or other.first_error,
            p50_ms=(self.p50_ms * self.ok + other.p50_ms * other.ok) / total,
            p99_ms=max(self.p99_ms, other.p99_ms),
        )


EMPTY = WrkResult(0, 0.0, 0, None, 0.0, 0.0)


def run_wrk(base_url: str, request: Request, *, connections: int, seconds: float) -> WrkResult:
    """Send ``request`` from ``connections`` keep-alive connections for ``seconds``.

    Raises BenchSetupError if wrk is missing or fails."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchSetupError("wrk is not installed: apt-get install wrk (or `make bench`)")
    command = [
        wrk,
        "--threads",
        "1",
        "--connections",
        str(connections),
        "--duration",
        f"{max(seconds, 1.0):.0f}s",
        "--timeout",
        "30s",
        "--script",
        str(SCRIPT),
        base_url + request.path,
        "--",
        request.method,
        request.path,
        str(request.expect),
        request.authorization,
        request.body,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    summary = _summary(done.stdout)
    if done.returncode != 0 or summary is None:
        raise BenchSetupError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    good = summary["requests"] - summary["unexpected"]
    return WrkResult(
        ok=good,
        seconds=summary["seconds"],
        errors=summary["unexpected"] + summary["socket_errors"],
        first_error=summary["first_unexpected"] or None,
        p50_ms=summary["p50_us"] / 1e3,
        p99_ms=summary["p99_us"] / 1e3,
    )


def _summary(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            parsed: dict[str, Any] = json.loads(line)
            return parsed
    return None
