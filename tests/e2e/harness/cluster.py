"""Real ``licentia serve`` processes sharing one database, and the data a race needs."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import (
    LICENTIA,
    Environment,
    Server,
    new_environment,
    start_server,
    wait_ready,
)

__all__ = ["LICENTIA", "Environment", "Pool", "Server", "create_pool", "environment", "serve"]


@contextmanager
def serve(env: Environment, count: int, *, workers: int = 1) -> Iterator[list[Server]]:
    """``count`` separate ``licentia serve`` processes on loopback ports, all ready
    (each with ``workers`` worker processes); raises if one does not come up."""
    with ExitStack() as stack:
        servers = [start_server(env, workers=workers) for _ in range(count)]
        for server in servers:
            stack.callback(server.stop)
        for server in servers:
            wait_ready(server)
        yield servers


@dataclass(frozen=True)
class Pool:
    """A redeemed seat pool with a unit counter, and how to look at it as its vendor."""

    base_url: str
    api_key: str
    slug: str
    license_id: str
    product: str
    licred: str  # the .licred JSON text
    seats: int
    units: int
    jwks: dict[str, Any]  # the vendor's public keys, as an application ships them

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.base_url}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
            **kwargs,
        )
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def every_item(self, path: str) -> list[Any]:
        """Every item of a list, following its pages."""
        items, cursor = [], None
        while True:
            params = {"limit": 200} | ({"cursor": cursor} if cursor else {})
            page = self.admin("GET", path, params=params)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items


def migrate(env: Environment) -> None:
    env.cli("db", "upgrade")


def create_pool(env: Environment, base_url: str, **options: Any) -> Pool:
    """A new vendor with a seat pool (``options`` are template options) redeemed into a
    cloud container; raises AssertionError with the server's answer if a step fails."""
    slug = f"race-{secrets.token_hex(4)}"
    env.cli("admin", "vendor", "create", slug, "--name", slug)
    api_key = str(env.cli("admin", "api-key", "create", "--vendor", slug, "--name", "race")["key"])
    pool = Pool(base_url, api_key, slug, "", "", "", int(options.get("seats", 0)), 0, {})
    product = pool.admin(
        "POST", "/products", json={"code": "RACE", "name": "Race", "features": [{"code": "run"}]}
    )
    template = pool.admin(
        "POST",
        "/templates",
        json={
            "sku": "RACE-POOL",
            "name": "Race pool",
            "product_id": product["id"],
            "features": ["run"],
            "options": {"delivery": "seat_pool", "max_devices": 1000, **options},
        },
    )
    order = pool.admin(
        "POST", "/orders", json={"external_order_id": "RACE-1", "lines": [{"sku": template["sku"]}]}
    )
    redeemed = httpx.post(
        f"{base_url}/api/v1/vendors/{slug}/cloud/redeem",
        json={"ticket": order["ticket_code"]},
        timeout=60,
    )
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    licred = {
        "licred": 1,
        "server_url": base_url,
        "vendor": slug,
        "container_id": body["container_id"],
        "credential": body["credential"],
    }
    return Pool(
        base_url,
        api_key,
        slug,
        body["license_ids"][0],
        "RACE",
        json.dumps(licred),
        int(options.get("seats", 0)),
        int(options.get("units") or 0),
        httpx.get(f"{base_url}/api/v1/vendors/{slug}/jwks.json", timeout=60).json(),
    )


def environment(database_url: str, workdir: Path) -> Environment:
    """The benchmark's server environment, with the sweep running during the races on
    every node and a smaller pool per process (several nodes share one database)."""
    extra = {"LICENTIA_SWEEP_SECONDS": "2", "LICENTIA_DATABASE_POOL_SIZE": "8"}
    return new_environment(database_url, workdir, extra)
