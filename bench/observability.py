"""What counting requests for ``/metrics`` costs the hottest call (docs/operations.md#metrics).
``python -m bench.observability`` runs it.

``GET /api/v1/licenses/{id}`` per second from 8 wrk connections against a server that
counts every request (``licentia_http_requests_total`` and the latency histogram, the
default), next to a server on the same database with ``LICENTIA_COUNT_REQUESTS=false``,
in pairs of rounds back to back; the ratio is the median pair's. Both give every
request its id and bind it to the logs' context. Goal: ratio ≥ 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.abuse import _variant
from bench.api import seed_catalog
from bench.server import (
    BenchSetupError,
    Environment,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)
from bench.wrk import EMPTY, Request, WrkResult, run_wrk

GOAL = 0.95  # hot call rate with requests counted / not counted


@dataclass(frozen=True)
class CountingCost:
    on: WrkResult
    off: WrkResult
    pair_ratios: tuple[float, ...]

    @property
    def ratio(self) -> float:
        return statistics.median(self.pair_ratios) if self.pair_ratios else 0.0


def measure_counting_cost(
    env: Environment, license_id: str, api_key: str, *, rounds: int, seconds: float
) -> CountingCost:
    read = Request("GET", f"/api/v1/licenses/{license_id}", 200, f"Bearer {api_key}")
    on, off, ratios = EMPTY, EMPTY, []
    with (
        running_server(env) as counting,
        running_server(_variant(env, count_requests="false")) as quiet,
    ):
        for server in (counting, quiet):
            run_wrk(server.url, read, connections=8, seconds=1)
        for round_ in range(rounds):
            order = (counting, quiet) if round_ % 2 == 0 else (quiet, counting)
            results = {s.url: run_wrk(s.url, read, connections=8, seconds=seconds) for s in order}
            on_round, off_round = results[counting.url], results[quiet.url]
            on, off = on.merge(on_round), off.merge(off_round)
            ratios.append(on_round.rate / off_round.rate if off_round.rate else 0.0)
    return CountingCost(on=on, off=off, pair_ratios=tuple(ratios))


def measure(backend: str = "sqlite", *, rounds: int = 8, seconds: float = 3.0) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-metrics-") as tmp,
        throwaway_database(backend, Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp))
        tenant = prepare(env)
        with running_server(env) as server:
            catalog = asyncio.run(seed_catalog(server.url, tenant.api_key))
        cost = measure_counting_cost(
            env, catalog.license_id, tenant.api_key, rounds=rounds, seconds=seconds
        )
    return {
        "backend": backend,
        "counted_per_s": round(cost.on.rate, 1),
        "not_counted_per_s": round(cost.off.rate, 1),
        "ratio": round(cost.ratio, 3),
        "round_ratios": [round(r, 3) for r in cost.pair_ratios],
        "errors": cost.on.errors + cost.off.errors,
        "first_error": cost.on.first_error or cost.off.first_error,
        "goal": f">= {GOAL}",
        "goal_met": cost.ratio >= GOAL,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observability", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    try:
        figures = measure(args.backend, rounds=args.rounds, seconds=args.seconds)
    except BenchSetupError as error:
        print(f"not measured: {error}")
        return 2
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
