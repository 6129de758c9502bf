"""Real ``licentia serve`` processes sharing one database, and the data a race needs."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from licentia.server.keys.master import new_master_key_text

LICENTIA = str(Path(sys.executable).with_name("licentia"))
READY_SECONDS = 60.0


@dataclass(frozen=True)
class Environment:
    """The ``LICENTIA_*`` settings every server and CLI process of one cluster shares."""

    database_url: str
    workdir: Path
    master_key: str

    def variables(self) -> dict[str, str]:
        return {
            **os.environ,
            "LICENTIA_ENVIRONMENT": "development",
            "LICENTIA_DATABASE_URL": self.database_url,
            "LICENTIA_MASTER_KEY": self.master_key,
            "LICENTIA_MASTER_KEY_FILE": str(self.workdir / "master.key"),
            "LICENTIA_SWEEP_SECONDS": "2",  # the sweep runs during the races, on every node
            "LICENTIA_DATABASE_POOL_SIZE": "8",
        }

    def cli(self, *args: str) -> Any:
        """``licentia ARGS --json``, parsed; fails loudly with the command's stderr."""
        done = subprocess.run(
            [LICENTIA, *args, "--json"],
            env=self.variables(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"licentia {' '.join(args)}: {done.stderr}"
        return json.loads(done.stdout)


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


@contextmanager
def serve(env: Environment, count: int, *, workers: int = 1) -> Iterator[list[Server]]:
    """``count`` separate ``licentia serve`` processes on loopback ports, all ready
    (each with ``workers`` worker processes)."""
    with ExitStack() as stack:
        servers = [_start(env, workers) for _ in range(count)]
        for server in servers:
            stack.callback(server.stop)
        for server in servers:
            _wait_ready(server)
        yield servers


def _start(env: Environment, workers: int) -> Server:
    port = _free_port()
    log = env.workdir / f"serve-{port}.log"
    command = [LICENTIA, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--workers", str(workers)],
            env=env.variables(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, f"http://127.0.0.1:{port}", log)


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"the server exited:\n{server.log.read_text()}"
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server was not ready:\n{server.log.read_text()}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    return Environment(database_url, workdir, new_master_key_text())
