"""The HTTP figures: orders → tickets per second, and a license read next to ``/healthz``."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass

import httpx

from bench.load import LoadResult, client_for, drive
from bench.server import BenchSetupError

ORDERS_GOAL_PG = 200.0  # single-line orders/s on PostgreSQL, 2-core machine
READ_GOAL_RATIO = 0.5


@dataclass(frozen=True)
class Catalog:
    sku: str
    license_id: str


@dataclass(frozen=True)
class ReadFigures:
    license: LoadResult
    healthz: LoadResult

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


async def measure_orders(
    base_url: str,
    api_key: str,
    sku: str,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
) -> LoadResult:
    """Single-line orders, each with a fresh external order id (so each makes a ticket)."""
    run = secrets.token_hex(3)
    numbers = itertools.count()

    async def send(client: httpx.AsyncClient, number: int) -> httpx.Response:
        body = {"external_order_id": f"BENCH-{run}-{number}", "lines": [{"sku": sku}]}
        return await client.post("/api/v1/orders", json=body)

    async with client_for(base_url, api_key, concurrency) as client:
        for phase in (warmup, seconds):  # the warm-up's figures are dropped
            result = await drive(
                client, send, concurrency=concurrency, seconds=phase, expect=201, numbers=numbers
            )
    return result


async def measure_reads(
    base_url: str,
    api_key: str,
    license_id: str,
    *,
    concurrency: int,
    rounds: int,
    seconds_each: float,
) -> ReadFigures:
    """Alternate rounds of ``GET /api/v1/licenses/{id}`` and ``GET /healthz`` on the same
    server and connections, so both see the same machine."""

    async def read_license(client: httpx.AsyncClient, _: int) -> httpx.Response:
        return await client.get(f"/api/v1/licenses/{license_id}")

    async def health(client: httpx.AsyncClient, _: int) -> httpx.Response:
        return await client.get("/healthz")

    license_total, health_total = LoadResult(), LoadResult()
    async with client_for(base_url, api_key, concurrency) as client:
        for send in (read_license, health):  # warm both paths and the connection pool
            await drive(client, send, concurrency=concurrency, seconds=0.5, expect=200)
        for _ in range(rounds):
            license_total = license_total.merge(
                await drive(
                    client, read_license, concurrency=concurrency, seconds=seconds_each, expect=200
                )
            )
            health_total = health_total.merge(
                await drive(
                    client, health, concurrency=concurrency, seconds=seconds_each, expect=200
                )
            )
    return ReadFigures(license=license_total, healthz=health_total)
