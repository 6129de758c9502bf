"""A Stripe sale to an issued ticket: ``checkout.session.completed``, signed as Stripe
signs it, posted to the vendor's shop address, timed until the answer (the order and
its ticket committed), next to a plain ``POST /api/v1/orders`` of the same size on the
same server in the same run. The two alternate, one request at a time, so that both
see the same machine. Goal: the event's p99 under 100 ms.

``python -m bench.shops [--backend sqlite|postgresql] [--requests N] [--quantity Q]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tests.support.shops import STRIPE_SECRET, checkout_session, stripe_event, stripe_header

from bench.api import seed_catalog
from bench.server import (
    BenchSetupError,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)

GOAL_P99_MS = 100.0
PRICE = "price_bench"


def measure_backend(backend: str, *, requests: int = 300, quantity: int = 1) -> dict[str, Any]:
    """Serve a throwaway database of ``backend`` and time ``requests`` shop events and as
    many plain orders, each of ``quantity`` licenses. Raises BenchSetupError."""
    with (
        tempfile.TemporaryDirectory(prefix="licentia-shops-") as tmp,
        throwaway_database(backend, Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp))
        tenant = prepare(env)
        with running_server(env) as server:
            catalog = asyncio.run(seed_catalog(server.url, tenant.api_key))
            headers = {"Authorization": f"Bearer {tenant.api_key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                _connect(client, catalog.sku)
                events, orders = _alternate(client, tenant.slug, catalog.sku, requests, quantity)
    return _report(backend, quantity, events, orders)


def _connect(client: httpx.Client, sku: str) -> None:
    steps = [
        ("PUT", "/api/v1/shops/stripe", {"signing_secret": STRIPE_SECRET}),
        (
            "POST",
            "/api/v1/shop-mappings",
            {"provider": "stripe", "provider_ref": PRICE, "sku": sku},
        ),
    ]
    for method, path, body in steps:
        answer = client.request(method, path, json=body)
        if answer.status_code >= 300:
            raise BenchSetupError(f"{method} {path}: {answer.status_code} {answer.text}")


def _alternate(
    client: httpx.Client, slug: str, sku: str, requests: int, quantity: int
) -> tuple[list[float], list[float]]:
    """Milliseconds of each event and each plain order (a few of each first, dropped)."""
    events: list[float] = []
    orders: list[float] = []
    address = f"/api/v1/vendors/{slug}/shops/stripe/events"
    for n in range(requests + 10):
        body = stripe_event("checkout.session.completed", checkout_session([(PRICE, quantity)]))
        signed = {"Stripe-Signature": stripe_header(body), "Content-Type": "application/json"}
        order = {
            "external_order_id": f"BENCH-{secrets.token_hex(6)}",
            "lines": [{"sku": sku, "quantity": quantity}],
        }
        event_ms = _timed(client, "POST", address, 200, content=body, headers=signed)
        order_ms = _timed(client, "POST", "/api/v1/orders", 201, json=order)
        if n >= 10:
            events.append(event_ms)
            orders.append(order_ms)
    return events, orders


def _timed(client: httpx.Client, method: str, path: str, status: int, **kwargs: Any) -> float:
    started = time.perf_counter()
    answer = client.request(method, path, **kwargs)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != status:
        raise BenchSetupError(f"expected {status}, got {answer.status_code}: {answer.text[:300]}")
    return elapsed


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _report(
    backend: str, quantity: int, events: list[float], orders: list[float]
) -> dict[str, Any]:
    event_p99, order_p99 = _percentile(events, 99), _percentile(orders, 99)
    return {
        "backend": backend,
        "requests": len(events),
        "licenses_each": quantity,
        "event_p50_ms": round(_percentile(events, 50), 1),
        "event_p99_ms": round(event_p99, 1),
        "order_p50_ms": round(_percentile(orders, 50), 1),
        "order_p99_ms": round(order_p99, 1),
        "ratio_p99": round(event_p99 / order_p99, 2) if order_p99 else None,
        "goal": f"p99 < {GOAL_P99_MS:.0f} ms",
        "goal_met": event_p99 < GOAL_P99_MS,
    }


def rows(reports: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, bool]]:
    """Table rows: (benchmark, measured, next to, ratio, goal, met)."""
    return [
        (
            f"Stripe event → ticket, {r['backend']}, {r['licenses_each']} license(s)",
            f"p99 {r['event_p99_ms']:.1f} ms (p50 {r['event_p50_ms']:.1f})",
            f"POST /orders p99 {r['order_p99_ms']:.1f} ms (p50 {r['order_p50_ms']:.1f})",
            f"{r['ratio_p99']:.2f}" if r["ratio_p99"] else "",
            r["goal"],
            r["goal_met"],
        )
        for r in reports
    ]


def goals_met(reports: list[dict[str, Any]]) -> bool:
    return all(report["goal_met"] for report in reports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shops", description=__doc__)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--quantity", type=int, default=1)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    reports = [
        measure_backend(backend, requests=args.requests, quantity=args.quantity)
        for backend in args.backend or ("sqlite", "postgresql")
    ]
    print(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
