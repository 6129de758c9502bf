"""Push updates: how soon a vendor's change reaches 1,000 connected devices.

One ``licentia serve`` process; 1,000 devices (bench/push_clients.py, a separate
process of lightweight SDK clients) activated and each holding a push stream. The
vendor then extends every device's license through the REST API, four requests at a
time. For each device: the time from the start of its license's extension to the
answer of the sync its push triggered, the one that brought the new state. Next to
it, in the same run with all streams open: the round trip of a plain conditional
sync (what a device pays to look, push or poll). Goal: p99 < 2 s.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.server import (
    BenchSetupError,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)

GOAL_P99_S = 2.0
DEVICES = 1000
CHANGE_CONCURRENCY = 4
GRACE_S = 10.0  # after the last change, how long the devices may take


def measure_push(backend: str, *, devices: int = DEVICES) -> dict[str, Any]:
    """The push figures on ``backend`` with ``devices`` connected devices."""
    _more_descriptors()
    extra = {
        "LICENTIA_MAX_CONNECTIONS": str(2 * devices + 200),
        "LICENTIA_PUSH_MAX_STREAMS": str(devices + 100),
    }
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-push-") as tmp,
        throwaway_database(backend, Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp), extra)
        tenant = prepare(env)
        with running_server(env) as server:
            http = httpx.Client(
                base_url=server.url,
                headers={"Authorization": f"Bearer {tenant.api_key}"},
                timeout=120,
            )
            ticket = _ticket(http, devices)
            return _run(server.url, tenant.slug, ticket, devices, http) | {"backend": backend}


def _run(url: str, slug: str, ticket: str, devices: int, http: httpx.Client) -> dict[str, Any]:
    clients = subprocess.Popen(
        [sys.executable, "-m", "bench.push_clients", url, slug, ticket, str(devices)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert clients.stdin is not None and clients.stdout is not None
    try:
        ready = json.loads(clients.stdout.readline() or "{}").get("ready")
        if ready is None:
            raise BenchSetupError("the push clients did not get ready")
        licenses = _licenses_by_device(http)
        started = _change_all(http, [licenses[d] for d in ready["devices"]])
        time.sleep(GRACE_S)  # a device not updated by then counts as missed
        clients.stdin.write("done\n")
        clients.stdin.flush()
        report = json.loads(clients.stdout.readline() or "{}")
    finally:
        try:
            clients.wait(timeout=60)
        except subprocess.TimeoutExpired:
            clients.kill()
    return _figures(ready, started, licenses, report)


def _figures(
    ready: dict[str, Any],
    started: dict[str, float],
    licenses: dict[str, str],
    report: dict[str, Any],
) -> dict[str, Any]:
    delays, missed = [], 0
    updates = report.get("updates", {})
    for device in ready["devices"]:
        begun = started[licenses[device]]
        after = [t for t in updates.get(device, []) if t >= begun]
        if after:
            delays.append(min(after) - begun)
        else:
            missed += 1
    reference = ready["reference_sync_s"]
    return {
        "devices": len(ready["devices"]),
        "updated": len(delays),
        "missed": missed,
        "push_p50_s": _quantile(delays, 50),
        "push_p99_s": _quantile(delays, 99),
        "push_max_s": max(delays, default=0.0),
        "sync_p50_s": _quantile(reference, 50),
        "sync_p99_s": _quantile(reference, 99),
        "errors": (ready.get("errors") or []) + (report.get("errors") or []),
        "goal": f"p99 < {GOAL_P99_S:.0f} s, every device updated",
        "goal_met": missed == 0 and _quantile(delays, 99) < GOAL_P99_S,
    }


def _quantile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100)[q - 1]


def _ticket(http: httpx.Client, devices: int) -> str:
    product = http.post("/api/v1/products", json={"code": "PUSH", "name": "Push bench"})
    template = http.post(
        "/api/v1/templates",
        json={
            "sku": "PUSH-1Y",
            "name": "Push bench, a year",
            "product_id": product.json()["id"],
            "options": {
                "delivery": "device",
                "validity": {"kind": "days_from_issue", "days": 365},
                "lease_days": 60,
                "refresh_days": 30,
            },
        },
    )
    if template.status_code != 201:
        raise BenchSetupError(f"template failed: {template.text}")
    order = http.post(
        "/api/v1/orders",
        json={
            "external_order_id": f"push-{secrets.token_hex(4)}",
            "lines": [{"sku": "PUSH-1Y", "quantity": devices}],
        },
    )
    if order.status_code not in (200, 201):
        raise BenchSetupError(f"order failed: {order.text}")
    return str(order.json()["ticket_code"])


def _licenses_by_device(http: httpx.Client) -> dict[str, str]:
    """Each device's license, by the device's key id."""
    found, cursor = {}, None
    while True:
        params: dict[str, Any] = {"limit": 200} | ({"cursor": cursor} if cursor else {})
        page = http.get("/api/v1/devices", params=params).json()
        for device in page["items"]:
            found[device["key_id"]] = device["license_ids"][0]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _change_all(http: httpx.Client, license_ids: list[str]) -> dict[str, float]:
    """Extend every license (``CHANGE_CONCURRENCY`` at a time); when each began."""
    started: dict[str, float] = {}

    def extend(license_id: str) -> None:
        started[license_id] = time.monotonic()
        answer = http.post(f"/api/v1/licenses/{license_id}/actions/extend", json={"days": 30})
        if answer.status_code != 200:
            raise BenchSetupError(f"extension failed: {answer.text}")

    with ThreadPoolExecutor(CHANGE_CONCURRENCY) as pool:
        list(pool.map(extend, license_ids))
    return started


def _more_descriptors() -> None:
    """Room for a thousand streams in the server (it inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


def rows(figures: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows: benchmark, measured, next to, ratio, goal, met."""
    return [
        (
            f"push to {f['devices']} devices, {f['backend']}",
            f"p50 {f['push_p50_s'] * 1e3:.0f} ms, p99 {f['push_p99_s'] * 1e3:.0f} ms"
            f" ({f['updated']} updated)",
            f"sync p50 {f['sync_p50_s'] * 1e3:.0f} ms, p99 {f['sync_p99_s'] * 1e3:.0f} ms",
            f"{f['push_p99_s'] / f['sync_p99_s']:.1f}" if f["sync_p99_s"] else "",
            f["goal"],
            f["goal_met"],
        )
        for f in figures
    ]


if __name__ == "__main__":
    figures = measure_push(sys.argv[1] if len(sys.argv) > 1 else "sqlite")
    print(json.dumps(figures, indent=2))
    os._exit(0)
