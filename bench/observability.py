"""What counting requests for ``/metrics`` costs the hottest call (docs/operations.md#metrics).
``python -m bench.observability`` runs only this part; ``python -m bench`` runs it with
the rest.

``GET /api/v1/licenses/{id}`` per second from 8 wrk connections against a server that
counts every request (``licentia_http_requests_total`` and the latency histogram, the
default), next to a server on the same database with ``LICENTIA_COUNT_REQUESTS=false``,
in pairs of rounds back to back (``bench/pairs.py``); the ratio is the median pair's.
Both give every request its id and bind it to the logs' context. Goal: ratio ≥ 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from bench.api import seed_catalog
from bench.pairs import PairedRates, measure_pairs, variant
from bench.server import (
    BenchSetupError,
    Environment,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)
from bench.wrk import Request

GOAL = 0.95  # hot call rate with requests counted / not counted


def measure_counting_cost(
    env: Environment, license_id: str, api_key: str, *, rounds: int, seconds: float
) -> PairedRates:
    read = Request("GET", f"/api/v1/licenses/{license_id}", 200, f"Bearer {api_key}")
    quiet = variant(env, count_requests="false")
    return measure_pairs(env, quiet, read, rounds=rounds, seconds=seconds)


def measure(backend: str = "sqlite", *, rounds: int = 8, seconds: float = 3.0) -> dict[str, Any]:
    """The figure on a throwaway database of ``backend``, as a report dict."""
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
        "errors": cost.errors,
        "first_error": cost.first_error,
        "goal": f">= {GOAL}",
        "goal_met": cost.ratio >= GOAL,
    }


def rows(report: dict[str, Any] | None) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows: figure, measured, next to, ratio, goal, met."""
    if report is None:
        return []
    return [
        (
            f"GET license, requests counted, {report['backend']}",
            f"{report['counted_per_s']:.0f} req/s",
            f"not counted {report['not_counted_per_s']:.0f} req/s",
            f"{report['ratio']:.2f}",
            report["goal"],
            report["goal_met"],
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.observability", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--quick", action="store_true", help="short phases (a smoke run)")
    args = parser.parse_args()
    rounds, seconds = (2, 1.0) if args.quick else (args.rounds, args.seconds)
    try:
        figures = measure(args.backend, rounds=rounds, seconds=seconds)
    except BenchSetupError as error:
        print(f"not measured: {error}")
        return 2
    print(json.dumps(figures, indent=2))
    for figure, measured, beside, ratio, goal, met in rows(figures):
        print(f"{figure}: {measured} (next to {beside}), ratio {ratio}, goal {goal}, met {met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
