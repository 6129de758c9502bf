"""Online activations through one server process on PostgreSQL, next to the bare
conditional UPDATE a seat checkout needs, from the same run.

The rate alone moves three- to fourfold between runs on a shared machine; the ratio
to the bare UPDATE (the seat section's reference: one conditional ``UPDATE`` per
transaction from 32 psycopg threads) says how much of what the database allows an
activation gets. ``make bench`` prints it from its device and seat sections;
``python -m bench.activations`` measures only these two figures (about 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.devices import measure_activation_rate
from bench.load import LoadResult
from bench.seats import bare_updates, checkpoint, free_slots, prepare_pool, psycopg_dsn
from bench.server import new_environment, prepare, running_server, throwaway_database

ACTIVATION_RATIO_GOAL = 0.05
BARE_THREADS = 32


def ratio_row(activations_per_s: float, bare_tx_per_s: float) -> dict[str, Any]:
    """The activation figure next to its reference, as ``make bench`` reports it."""
    ratio = activations_per_s / bare_tx_per_s if bare_tx_per_s else 0.0
    return {
        "activations_per_s": round(activations_per_s, 1),
        "bare_update_tx_per_s": round(bare_tx_per_s, 1),
        "ratio": round(ratio, 4),
        "goal": f">= {ACTIVATION_RATIO_GOAL}",
        "goal_met": ratio >= ACTIVATION_RATIO_GOAL,
    }


def table_row(row: dict[str, Any] | None) -> tuple[str, str, str, str, str, bool | None] | None:
    """benchmark, measured, next to, ratio, goal, met (None without both figures)."""
    if row is None:
        return None
    return (
        "online activations, postgresql, 1 process",
        f"{row['activations_per_s']:.0f} activations/s",
        f"bare conditional UPDATE {row['bare_update_tx_per_s']:.0f} tx/s",
        f"{row['ratio']:.3f}",
        row["goal"],
        row["goal_met"],
    )


def measure(seconds: float, concurrency: int) -> tuple[LoadResult, LoadResult]:
    """Activations, then bare UPDATEs, against one throwaway PostgreSQL database and
    one ``licentia serve`` process."""
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp,
        throwaway_database("postgresql", Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp))
        tenant = prepare(env)
        with running_server(env, workers=1) as server:
            activations = measure_activation_rate(
                server, tenant.slug, tenant.api_key, seconds=seconds, concurrency=concurrency
            )
            pool = prepare_pool(server, tenant.slug, tenant.api_key)
            dsn = psycopg_dsn(env.database_url)
            checkpoint(dsn)
            slots = free_slots(dsn, pool.license_id, BARE_THREADS)
            bare = bare_updates(dsn, slots, seconds=seconds)
    return activations, bare


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.activations``: the activation ratio alone, as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.activations", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0, help="per phase (default 6)")
    parser.add_argument("--clients", type=int, default=16, help="activating clients (default 16)")
    args = parser.parse_args(argv)
    activations, bare = measure(args.seconds, args.clients)
    report = ratio_row(activations.rate, bare.rate) | {
        "activation_p99_ms": round(activations.percentile_ms(99), 1),
        "activation_errors": activations.errors,
        "first_error": activations.first_error,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
