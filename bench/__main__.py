"""``python -m bench``: run every benchmark and print a table (or ``--json``).

Exit status: 0 when every benchmark ran (goals met or not; ``--check`` makes a missed
goal exit 1), 2 when a benchmark could not run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import abuse, observability
from bench import shops as shop_bench
from bench.activations import ratio_row
from bench.activations import table_row as activation_row
from bench.api import (
    ORDERS_GOAL_PG,
    READ_GOAL_RATIO,
    ReadFigures,
    measure_orders,
    measure_reads,
    seed_catalog,
)
from bench.devices import measure_device_traffic, measure_devices, traffic_rows
from bench.devices import rows as device_rows
from bench.pages import goals_met as page_goals_met
from bench.pages import measure_backend as measure_pages
from bench.pages import rows as page_rows
from bench.push import measure_push
from bench.push import rows as push_rows
from bench.seats import SeatBenchConfig, measure_seats
from bench.seats import rows as seat_rows
from bench.server import (
    BenchSetupError,
    Environment,
    Tenant,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)
from bench.signing import GOAL_RATIO, SigningResult, measure_signing
from bench.startup import measure_startup
from bench.startup import rows as startup_rows
from bench.webhooks import measure as measure_webhooks
from bench.webhooks import rows as webhook_rows
from bench.wrk import WrkResult


@dataclass(frozen=True)
class Config:
    backends: tuple[str, ...]
    postgres_workers: int
    order_seconds: float
    order_concurrency: int
    read_rounds: int
    read_seconds: float
    read_concurrency: int
    signing_seconds: float
    seat_seconds: float
    device_seconds: float
    page_rounds: int
    push_devices: int
    shop_requests: int
    webhook_events: int
    webhook_seconds: float
    pair_rounds: int  # rounds of a feature on and off (bench/pairs.py)


@dataclass
class Figures:
    signing: SigningResult | None = None
    orders: list[dict[str, Any]] = field(default_factory=list)
    reads: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seats: dict[str, Any] | None = None
    devices: list[dict[str, Any]] = field(default_factory=list)
    startup: list[dict[str, Any]] = field(default_factory=list)
    pages: list[dict[str, Any]] = field(default_factory=list)
    activations_per_s: float | None = None  # PostgreSQL, one server process
    abuse: dict[str, Any] | None = None  # rate limiter cost, a flood's cost (SQLite)
    observability: dict[str, Any] | None = None  # what counting requests costs (SQLite)
    pushes: list[dict[str, Any]] = field(default_factory=list)  # per backend
    shops: list[dict[str, Any]] = field(default_factory=list)  # shop event → ticket
    webhooks: list[dict[str, Any]] = field(default_factory=list)


def parse(argv: list[str]) -> tuple[Config, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if a goal is missed")
    parser.add_argument(
        "--backend",
        action="append",
        choices=["sqlite", "postgresql"],
        help="repeatable; default: both",
    )
    parser.add_argument("--postgres-workers", type=int, default=2, help="default: 2")
    parser.add_argument(
        "--quick", action="store_true", help="short phases (a smoke run, not figures to record)"
    )
    args = parser.parse_args(argv)
    scale = 0.25 if args.quick else 1.0
    config = Config(
        backends=tuple(args.backend or ("sqlite", "postgresql")),
        postgres_workers=args.postgres_workers,
        order_seconds=10 * scale,
        order_concurrency=16,
        read_rounds=4,
        read_seconds=max(1.0, 3 * scale),
        read_concurrency=8,
        signing_seconds=4 * scale,
        seat_seconds=8 * scale,
        device_seconds=6 * scale,
        page_rounds=2 if args.quick else 5,
        push_devices=200 if args.quick else 1000,
        shop_requests=60 if args.quick else 300,
        webhook_events=int(3000 * scale),
        webhook_seconds=10 * scale,
        pair_rounds=2 if args.quick else 8,
    )
    return config, args


def run(config: Config) -> Figures:
    figures = Figures(signing=measure_signing(seconds=config.signing_seconds))
    figures.startup = startup_rows(measure_startup())
    for backend in config.backends:
        try:
            run_backend(backend, config, figures)
            figures.pages.append(measure_pages(backend, rounds=config.page_rounds))
            figures.pushes.append(measure_push(backend, devices=config.push_devices))
            figures.shops.append(shop_bench.measure_backend(backend, requests=config.shop_requests))
            figures.webhooks.append(
                measure_webhooks(
                    backend, events=config.webhook_events, seconds=config.webhook_seconds
                )
            )
        except BenchSetupError as error:
            figures.problems.append(f"{backend}: {error}")
    try:
        figures.abuse = abuse.measure("sqlite", seconds=config.read_seconds)
    except BenchSetupError as error:
        figures.problems.append(f"abuse limits: {error}")
    try:
        figures.observability = observability.measure(
            "sqlite", rounds=config.pair_rounds, seconds=config.read_seconds
        )
    except BenchSetupError as error:
        figures.problems.append(f"metrics: {error}")
    return figures


def run_backend(backend: str, config: Config, figures: Figures) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp,
        throwaway_database(backend, Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp))
        tenant = prepare(env)
        api_key = tenant.api_key
        with running_server(env) as server:
            catalog = asyncio.run(seed_catalog(server.url, api_key))
            orders = _orders(server.url, api_key, catalog.sku, config)
            figures.orders.append(_order_row(backend, 1, orders))
            reads = measure_reads(
                server.url,
                api_key,
                catalog.license_id,
                concurrency=config.read_concurrency,
                rounds=config.read_rounds,
                seconds_each=config.read_seconds,
            )
            figures.reads.append(_read_row(backend, reads))
            device_figures = measure_devices(
                server, tenant.slug, api_key, seconds=config.device_seconds
            )
            figures.devices += device_rows(device_figures, backend)
            if backend == "postgresql":
                figures.activations_per_s = device_figures.activations.rate
        if backend == "postgresql" and config.postgres_workers > 1:
            _with_workers(env, tenant, catalog.sku, config, figures)
        if backend == "postgresql":
            figures.seats = _seats(env, tenant.slug, api_key, config)


def _seats(env: Environment, slug: str, api_key: str, config: Config) -> dict[str, Any]:
    """Seats and counters against one ``licentia serve`` process: "one server" of the
    goals. (A second worker process measured lower on the 2-core machine: the
    server's processes, PostgreSQL and the load generator then contend for the cores.)"""
    seconds = config.seat_seconds
    with running_server(env, workers=1) as server:
        report = measure_seats(
            env, server, slug, api_key, SeatBenchConfig(seconds=seconds, step_seconds=seconds / 2)
        )
    return report | {"workers": 1}


def _with_workers(
    env: Environment, tenant: Tenant, sku: str, config: Config, figures: Figures
) -> None:
    """Orders, activations and syncs against one node with several worker processes."""
    workers = config.postgres_workers
    with running_server(env, workers=workers) as server:
        orders = _orders(server.url, tenant.api_key, sku, config)
        activations, syncs = measure_device_traffic(
            server, tenant.slug, tenant.api_key, seconds=config.device_seconds
        )
    figures.orders.append(_order_row("postgresql", workers, orders))
    figures.devices += traffic_rows(activations, syncs, f"postgresql, {workers} workers")


def _orders(url: str, api_key: str, sku: str, config: Config) -> WrkResult:
    return measure_orders(
        url,
        api_key,
        sku,
        concurrency=config.order_concurrency,
        seconds=config.order_seconds,
        warmup=1.0,
    )


def _order_row(backend: str, workers: int, result: WrkResult) -> dict[str, Any]:
    return {
        "backend": backend,
        "workers": workers,
        "orders_per_s": round(result.rate, 1),
        "orders": result.ok,
        "seconds": round(result.seconds, 2),
        "p50_ms": round(result.percentile_ms(50), 1),
        "p99_ms": round(result.percentile_ms(99), 1),
        "errors": result.errors,
        "first_error": result.first_error,
        "goal": f">= {ORDERS_GOAL_PG:.0f}/s" if backend == "postgresql" else None,
        "goal_met": result.rate >= ORDERS_GOAL_PG if backend == "postgresql" else None,
    }


def _read_row(backend: str, reads: ReadFigures) -> dict[str, Any]:
    return {
        "backend": backend,
        "license_per_s": round(reads.license.rate, 1),
        "healthz_per_s": round(reads.healthz.rate, 1),
        "ratio": round(reads.ratio, 3),
        "license_p50_ms": round(reads.license.percentile_ms(50), 2),
        "healthz_p50_ms": round(reads.healthz.percentile_ms(50), 2),
        "errors": reads.license.errors + reads.healthz.errors,
        "first_error": reads.license.first_error or reads.healthz.first_error,
        "goal": f">= {READ_GOAL_RATIO}",
        "goal_met": reads.ratio >= READ_GOAL_RATIO,
    }


def as_json(figures: Figures, config: Config, elapsed: float) -> dict[str, Any]:
    signing = figures.signing
    assert signing is not None
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "elapsed_s": round(elapsed, 1),
        "config": config.__dict__,
        "signing": {
            "document_us": round(signing.document_us, 1),
            "raw_ed25519_us": round(signing.raw_us, 1),
            "ratio": round(signing.ratio, 2),
            "payload_bytes": signing.payload_bytes,
            "goal": f"<= {GOAL_RATIO}",
            "goal_met": signing.ratio <= GOAL_RATIO,
        },
        "orders": figures.orders,
        "reads": figures.reads,
        "seats": figures.seats,
        "devices": figures.devices,
        "startup": figures.startup,
        "activation_ratio": _activation_ratio(figures),
        "abuse": figures.abuse,
        "observability": figures.observability,
        "pages": figures.pages,
        "push": figures.pushes,
        "shops": figures.shops,
        "webhooks": figures.webhooks,
        "problems": figures.problems,
    }


def _activation_ratio(figures: Figures) -> dict[str, Any] | None:
    """Activations through one PostgreSQL server process next to the seat section's
    bare conditional UPDATE, both from this run."""
    if figures.activations_per_s is None or figures.seats is None:
        return None
    bare = figures.seats["seat_ops"]["bare_update_tx_per_s"]
    return ratio_row(figures.activations_per_s, bare)


def machine() -> dict[str, Any]:
    """What the figures depend on; the load average shows whether anything else ran."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def print_tables(report: dict[str, Any], console: Console) -> None:
    machine_ = report["machine"]
    table = Table(title=f"Licentia benchmarks, {report['date']}, {machine_['cpus']} CPUs")
    for column in ("benchmark", "measured", "next to", "ratio", "goal", "met"):
        table.add_column(column)
    signing = report["signing"]
    table.add_row(
        "sign a license document",
        f"{signing['document_us']:.0f} us/doc",
        f"raw Ed25519 {signing['raw_ed25519_us']:.0f} us",
        f"{signing['ratio']:.2f}",
        signing["goal"],
        _met(signing["goal_met"]),
    )
    for row in report["orders"]:
        table.add_row(
            f"orders, {row['backend']}, {row['workers']} worker(s)",
            f"{row['orders_per_s']:.0f} orders/s",
            f"p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms",
            "",
            row["goal"] or "",
            _met(row["goal_met"]),
        )
    for row in report["reads"]:
        table.add_row(
            f"GET license, {row['backend']}",
            f"{row['license_per_s']:.0f} req/s",
            f"/healthz {row['healthz_per_s']:.0f} req/s",
            f"{row['ratio']:.2f}",
            row["goal"],
            _met(row["goal_met"]),
        )
    for row in report["devices"] + report["startup"]:
        table.add_row(row["figure"], row["value"], "", "", row["goal"], _met(row["met"]))
    activation = activation_row(report.get("activation_ratio"))
    if activation is not None:
        *cells, met = activation
        table.add_row(*cells, _met(met))
    for *cells, met in seat_rows(report.get("seats")):
        table.add_row(*cells, _met(met))
    for *cells, met in abuse.rows(report.get("abuse")):
        table.add_row(*cells, _met(met))
    for *cells, met in observability.rows(report.get("observability")):
        table.add_row(*cells, _met(met))
    for *cells, met in page_rows(report.get("pages") or []):
        table.add_row(*cells, _met(met))
    for *cells, met in push_rows(report.get("push") or []):
        table.add_row(*cells, _met(met))
    for *cells, met in shop_bench.rows(report.get("shops") or []):
        table.add_row(*cells, _met(met))
    for *cells, met in webhook_rows(report.get("webhooks") or []):
        table.add_row(*cells, _met(met))
    console.print(table)
    console.print(
        f"total time {report['elapsed_s']} s; load average at the end "
        f"{machine_['load_average_1m']} (on {machine_['cpus']} CPUs)"
    )
    for row in report["orders"] + report["reads"]:
        if row["errors"]:
            console.print(
                f"[yellow]{row['backend']}: {row['errors']} errors, first: {row['first_error']}[/]"
            )
    for problem in report["problems"]:
        console.print(f"[red]not measured: {problem}[/]")


def _met(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "[red]NO[/]")


def goals_met(report: dict[str, Any]) -> bool:
    rows = [report["signing"], *report["orders"], *report["reads"]]
    rows += list((report.get("seats") or {}).values())
    rows += [report["activation_ratio"]] if report.get("activation_ratio") else []
    abused = report.get("abuse")
    rows += [abused["limiter"], abused["flood"]] if abused else []
    rows += [report["observability"]] if report.get("observability") else []
    rows += report.get("push") or []
    for hooks in report.get("webhooks") or []:
        rows += [
            {"goal_met": hooks["delivered_goal_met"]},
            {"goal_met": hooks["lag_goal_met"]},
        ]
    devices = [row for row in report["devices"] if "sqlite" not in row["figure"]]
    devices += report["startup"]
    return (
        all(row["goal_met"] is not False for row in rows)
        and all(r["met"] for r in devices)
        and page_goals_met(report.get("pages") or [])
        and shop_bench.goals_met(report.get("shops") or [])
    )


def main(argv: list[str] | None = None) -> int:
    config, args = parse(sys.argv[1:] if argv is None else argv)
    console = Console(stderr=args.json, width=max(100, shutil.get_terminal_size().columns))
    started = time.perf_counter()
    with nullcontext() if args.json else console.status("measuring…"):
        figures = run(config)
    report = as_json(figures, config, time.perf_counter() - started)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_tables(report, console)
    if report["problems"]:
        return 2
    return 1 if args.check and not goals_met(report) else 0


if __name__ == "__main__":
    raise SystemExit(main())
