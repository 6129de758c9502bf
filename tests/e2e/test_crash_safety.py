"""Crash safety: the server is SIGKILLed at random moments while clients place orders
with idempotency keys, activate devices, check seats out and consume units, each
retrying until answered. Afterwards every acknowledged write is there, nothing was
applied twice, a request sent again with its key gets the very same answer, and the
audit chains verify (tests.e2e.harness.crash and .checker).

``LICENTIA_CRASH_KILLS`` kills per backend (30 here; ``make crash`` runs 500), at
moments drawn from ``LICENTIA_CRASH_SEED`` (printed; the time by default).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import respawn
from tests.e2e.harness.checker import check
from tests.e2e.harness.cluster import Environment, Pool, create_pool, environment, migrate
from tests.e2e.harness.crash import (
    Ledger,
    Shop,
    activate_devices,
    check_activations,
    check_orders,
    write_orders,
)
from tests.e2e.harness.history import History
from tests.e2e.harness.workload import Race, run_threads

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash-safety")]

KILLS = int(os.environ.get("LICENTIA_CRASH_KILLS", "30"))
SEED = int(os.environ.get("LICENTIA_CRASH_SEED", str(int(time.time()))))
UPTIME = (0.1, 0.8)  # seconds of load between a server's readiness and its kill
SETUP_SECONDS = 3.0  # the cloud clients register before the first kill
SEATS, TTL, UNITS = 5, 10, 10**6
CLOUD_CLIENTS, ORDER_WRITERS, ACTIVATORS = 6, 2, 2
TICKET_LICENSES = min(10 * KILLS, 1000)  # enough for the devices of the whole run


@pytest.fixture(scope="module")
def env(backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Environment:
    env = environment(database_url, tmp_path_factory.mktemp(f"crash-{backend}"))
    migrate(env)
    return env


@pytest.fixture
def server(env: Environment) -> Iterator[respawn.RespawningServer]:
    server = respawn.start(env)
    try:
        yield server
    finally:
        server.stop()


def _open_shop(pool: Pool) -> Shop:
    product = pool.admin("POST", "/products", json={"code": "CRASH", "name": "Crash"})
    skus = []
    for name in ("A", "B"):
        body = {"sku": f"CRASH-{name}", "name": name, "product_id": product["id"]}
        pool.admin("POST", "/templates", json=body | {"options": {"delivery": "device"}})
        skus.append(body["sku"])
    line = {"sku": skus[0], "quantity": TICKET_LICENSES}
    order = pool.admin("POST", "/orders", json={"external_order_id": "DEVICES", "lines": [line]})
    return Shop(
        pool.base_url, pool.slug, pool.api_key, skus, order["ticket_code"], order["ticket_id"]
    )


def _await_progress(history: History, ledger: Ledger) -> None:
    """Wait (10 s at most) until a client got an answer from the new server."""

    def answered() -> int:
        cloud = sum(1 for op in history.operations if op.status is not None)
        return cloud + len(ledger.orders) + len(ledger.devices)

    seen = answered()
    deadline = time.monotonic() + 10
    while answered() == seen and time.monotonic() < deadline:
        time.sleep(0.02)


def test_every_acknowledged_write_survives_sigkills_once_and_replays_the_same(
    env: Environment, server: respawn.RespawningServer, tmp_path: Path
) -> None:
    pool = create_pool(
        env,
        server.url,
        seats=SEATS,
        seat_counting="per_process",
        units=UNITS,
        seat_lease_seconds=TTL,
    )
    shop = _open_shop(pool)
    start_at = time.time() + SETUP_SECONDS
    race = Race(
        [server.url],
        pool.licred,
        pool.jwks,
        pool.product,
        str(tmp_path / "clients"),
        start_at=start_at,
        stop_at=start_at + 86400,
        seed=SEED,
    )
    history, ledger, stop = History(), Ledger(), threading.Event()
    names = [f"cloud{n}" for n in range(CLOUD_CLIENTS)]
    writers = [threading.Thread(target=run_threads, args=(race, names, history, stop))]
    writers += [
        threading.Thread(target=write_orders, args=(shop, f"erp{n}", ledger, stop))
        for n in range(ORDER_WRITERS)
    ]
    writers += [
        threading.Thread(target=activate_devices, args=(shop, f"dev{n}", ledger, stop))
        for n in range(ACTIVATORS)
    ]
    for writer in writers:
        writer.start()
    rng = random.Random(SEED)
    try:
        time.sleep(max(0.0, start_at - time.time()))
        for _ in range(KILLS):
            _await_progress(history, ledger)  # each server is killed under load
            time.sleep(rng.uniform(*UPTIME))
            server.kill()
    finally:
        stop.set()
        for writer in writers:
            writer.join(timeout=300)

    report = check(
        history.operations,
        seats=SEATS,
        ttl=TTL,
        events=pool.every_item(f"/licenses/{pool.license_id}/seat-events"),
        units=pool.admin("GET", f"/licenses/{pool.license_id}/units"),
        initial=UNITS,
    )
    problems = report.problems + ledger.problems + check_orders(shop, ledger)
    problems += check_activations(shop, ledger, pool.every_item("/devices"))
    audit = env.cli("audit", "verify")
    print(
        f"\n{KILLS} kills (seed {SEED}): {len(ledger.orders)} orders, "
        f"{len(ledger.devices)} activations acknowledged, {ledger.unanswered} unanswered; "
        f"{report.summary()}"
    )
    assert not any(writer.is_alive() for writer in writers)
    assert history.failures == []
    assert problems == []
    assert audit["intact"] is True
    assert ledger.orders and ledger.devices, "no order or no activation was acknowledged"
    assert report.figures["consumptions_acknowledged"] > 0
    assert report.figures["checkouts_granted"] > 0
