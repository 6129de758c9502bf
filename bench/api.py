"""The HTTP figures: orders → tickets per second, and a license read next to ``/healthz``."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import httpx

from bench.load import client_for
from bench.server import BenchSetupError
from bench.wrk import EMPTY, Request, WrkResult, run_wrk

ORDERS_GOAL_PG = 200.0  # single-line orders/s on PostgreSQL, 2-core machine
READ_GOAL_RATIO = 0.5


@dataclass(frozen=True)
class Catalog:
    sku: str
    license_id: str


@dataclass(frozen=True)
class ReadFigures:
    license: WrkResult
    healthz: WrkResult

    @property
    def ratio(self) -> float:
        return self.license.rate / self.healthz.rate if self.healthz.rate else 0.0


async def seed_catalog(base_url: str, api_key: str) -> Catalog:
    """A product, a one-device template, and one order whose license the reads fetch."""
    async with client_for(base_url, api_key, 1) as client:
        product = await _created(
            client,
            "/api/v1/products",
            {"code": "BENCH", "name": "Benchmark", "features": [{"code": "run"}]},
        )
        template = await _created(
            client,
            "/api/v1/templates",
            {
                "sku": "BENCH-1",
                "name": "Benchmark, one device",
                "product_id": product["id"],
                "features": ["run"],
                "options": {"maintenance_days": 365},
            },
        )
        order = await _created(
            client,
            "/api/v1/orders",
            {"external_order_id": "BENCH-SEED", "lines": [{"sku": template["sku"]}]},
        )
        ticket = (await client.get(f"/api/v1/tickets/{order['ticket_id']}")).json()
    return Catalog(sku=template["sku"], license_id=ticket["license_ids"][0])


async def _created(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> dict:
    response = await client.post(path, json=body)
    if response.status_code != 201:
        raise BenchSetupError(f"POST {path}: {response.status_code} {response.text}")
    data: dict = response.json()
    return data


def measure_orders(
    base_url: str, api_key: str, sku: str, *, concurrency: int, seconds: float, warmup: float
) -> WrkResult:
    """Single-line orders, each with a fresh external order id (so each makes a ticket)."""

    def fresh_orders() -> Request:  # each phase numbers from 1: a new prefix keeps ids new
        body = {"external_order_id": f"BENCH-{secrets.token_hex(4)}-{{n}}", "lines": [{"sku": sku}]}
        return Request("POST", "/api/v1/orders", 201, f"Bearer {api_key}", json.dumps(body))

    run_wrk(base_url, fresh_orders(), connections=concurrency, seconds=warmup)  # dropped
    return run_wrk(base_url, fresh_orders(), connections=concurrency, seconds=seconds)


def measure_reads(
    base_url: str,
    api_key: str,
    license_id: str,
    *,
    concurrency: int,
    rounds: int,
    seconds_each: float,
) -> ReadFigures:
    """Alternate rounds of ``GET /api/v1/licenses/{id}`` and ``GET /healthz`` on the same
    server, so both see the same machine."""
    read = Request("GET", f"/api/v1/licenses/{license_id}", 200, f"Bearer {api_key}")
    health = Request("GET", "/healthz", 200)
    license_total, health_total = EMPTY, EMPTY
    for request in (read, health):  # warm both paths
        run_wrk(base_url, request, connections=concurrency, seconds=1)
    for _ in range(rounds):
        license_total = license_total.merge(
            run_wrk(base_url, read, connections=concurrency, seconds=seconds_each)
        )
        health_total = health_total.merge(
            run_wrk(base_url, health, connections=concurrency, seconds=seconds_each)
        )
    return ReadFigures(license=license_total, healthz=health_total)
