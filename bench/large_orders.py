"""A large order next to small ones: how long it takes, and what it holds up meanwhile.

One ``licentia serve`` process, two vendors. While vendor A's order of ``licenses``
licenses (lines of at most 1000) is being placed, single-license orders of vendor A
and of vendor B are sent one after the other, each waiting for the previous answer;
their latencies are compared with the same orders on the quiet server. An order of
more than 1,000 licenses is answered 202 at once and issued by a job in batches: the
figures say how long the answer took, and how long until the order was completed
(polled every 50 ms), with the small orders measured all that time.

``python -m bench.large_orders [--backend sqlite|postgresql] [--licenses N]`` prints
the figures as JSON (docs/benchmarks.md records them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.api import seed_catalog
from bench.server import (
    Server,
    Tenant,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)

LINE = 1000  # licenses per order line, the most a line takes


@dataclass
class Small:
    """Single-license orders of one vendor, placed one after the other."""

    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        if not self.latencies:
            return {"orders": 0, "failures": self.failures[:3]}
        return {
            "orders": len(self.latencies),
            "p50_ms": round(statistics.median(self.latencies) * 1e3, 1),
            "max_ms": round(max(self.latencies) * 1e3, 1),
            "failures": self.failures[:3],
        }


def _client(server: Server, api_key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=300
    )


def _order(client: httpx.Client, external_id: str, lines: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/api/v1/orders", json={"external_order_id": external_id, "lines": lines})


def _small_orders(client: httpx.Client, sku: str, prefix: str, done: threading.Event) -> Small:
    small = Small()
    n = 0
    while not done.is_set():
        n += 1
        started = time.perf_counter()
        answer = _order(client, f"{prefix}-{n}", [{"sku": sku}])
        if answer.status_code == 201:
            small.latencies.append(time.perf_counter() - started)
        else:
            small.failures.append(f"{answer.status_code} {answer.text[:200]}")
    return small


def _quiet(client: httpx.Client, sku: str, prefix: str, count: int = 20) -> Small:
    small = Small()
    for n in range(count):
        started = time.perf_counter()
        answer = _order(client, f"{prefix}-{n}", [{"sku": sku}])
        if answer.status_code == 201:
            small.latencies.append(time.perf_counter() - started)
    return small


def _await_completed(client: httpx.Client, order_id: str) -> None:
    while client.get(f"/api/v1/orders/{order_id}").json()["status"] != "completed":
        time.sleep(0.05)


def measure(server: Server, tenants: tuple[Tenant, Tenant], licenses: int) -> dict[str, Any]:
    (a, b) = tenants
    sku_a = asyncio.run(seed_catalog(server.url, a.api_key)).sku
    sku_b = asyncio.run(seed_catalog(server.url, b.api_key)).sku
    with (
        _client(server, a.api_key) as big,
        _client(server, a.api_key) as same,
        _client(server, b.api_key) as other,
    ):
        quiet_same, quiet_other = _quiet(same, sku_a, "QA"), _quiet(other, sku_b, "QB")
        lines = [
            {"sku": sku_a, "quantity": min(LINE, licenses - start), "line_id": str(start)}
            for start in range(0, licenses, LINE)
        ]
        done = threading.Event()
        results: dict[str, Small] = {}

        def small(name: str, client: httpx.Client, sku: str) -> None:
            results[name] = _small_orders(client, sku, f"S{name}", done)

        threads = [
            threading.Thread(target=small, args=("same", same, sku_a)),
            threading.Thread(target=small, args=("other", other, sku_b)),
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        answer = _order(big, "LARGE-1", lines)
        answered = time.perf_counter() - started
        if answer.status_code == 202:
            _await_completed(big, answer.json()["id"])
        elapsed = time.perf_counter() - started
        done.set()
        for thread in threads:
            thread.join()
    return {
        "licenses": licenses,
        "large_order": {
            "status": answer.status_code,
            "code": answer.json().get("code") if answer.status_code >= 400 else None,
            "answered_ms": round(answered * 1e3, 1),
            "seconds": round(elapsed, 2),
        },
        "same_vendor_quiet": quiet_same.figures(),
        "same_vendor_during": results["same"].figures(),
        "other_vendor_quiet": quiet_other.figures(),
        "other_vendor_during": results["other"].figures(),
    }


def run(backend: str, licenses: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp,
        throwaway_database(backend, Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp))
        tenant = prepare(env)
        env.cli("admin", "vendor", "create", "other", "--name", "Another vendor")
        key = env.cli("admin", "api-key", "create", "--vendor", "other", "--name", "bench")
        other = Tenant("other", str(key["key"]))
        with running_server(env) as server:
            return {"backend": backend, **measure(server, (tenant, other), licenses)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.large_orders", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--licenses", type=int, action="append")
    args = parser.parse_args(argv)
    report = [
        run(backend, licenses)
        for backend in args.backend or ["sqlite", "postgresql"]
        for licenses in args.licenses or [1000, 5000]
    ]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
