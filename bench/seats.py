"""Seats and counters under load, on PostgreSQL through the HTTP API.

Three figures, from one throwaway database and one ``licentia serve`` node:

- seat operations per second — checkout, heartbeat and release, each one operation —
  from concurrent clients, next to the bare transaction a checkout needs (the
  conditional ``UPDATE seat_slots … WHERE id = … AND (expires_at IS NULL OR expires_at
  <= now) RETURNING fence``, one per transaction) run with psycopg from as many
  threads on the same database in the same run;
- heartbeat capacity: heartbeats sent open-loop at rising rates to leases held on
  the server; the highest rate whose p99 stays under 50 ms, times the 60 s heartbeat
  period, is the number of active leases the node sustains;
- consumptions per second on one hot counter from 100 concurrent clients, then the
  ledger audited: every acknowledged consumption counted exactly once.

The load comes from a lean HTTP client (bench/http.py: prepared requests on keep-alive
connections, answers parsed by httptools) on one event loop in a process of its own
(the bench's main process keeps the bare-UPDATE threads and the bookkeeping), so the
server is measured, not the client library; still, generator, server and database
share the machine's cores, so the figures are what this box sustains with everything
on it, not a property of the code alone.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
from sqlalchemy.engine import make_url

from bench.http import HttpPool
from bench.load import LoadResult
from bench.server import (
    BenchSetupError,
    Environment,
    Server,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)

SEAT_OPS_GOAL = 1000.0
SEAT_RATIO_GOAL = 0.3
HEARTBEAT_P99_GOAL_MS = 50.0
HEARTBEAT_PERIOD_S = 60.0
LEASES_GOAL = 100_000
HEARTBEAT_RATES = (25, 50, 100, 150, 200, 300, 450, 600, 800, 1000, 1300, 1700, 2000, 2500, 3000)
POOL_SEATS = 5000
T = TypeVar("T")


@dataclass(frozen=True)
class SeatBenchConfig:
    concurrency: int = 32
    seconds: float = 8.0
    step_seconds: float = 4.0
    leases: int = 400
    consumers: int = 100


@dataclass(frozen=True)
class Device:
    """The benchmark's registered device and the pool it uses."""

    server: str  # the server's base URL
    base: str  # /api/v1/vendors/<slug>/cloud/
    token: str
    license_id: str
    product: str

    def client(self, connections: int) -> HttpPool:
        """``connections`` keep-alive connections (paths are made by :meth:`url`)."""
        return HttpPool(self.server, connections, {"Authorization": f"Bearer {self.token}"})

    def url(self, path: str) -> str:
        return self.base + path


# -- the load generator's process ------------------------------------------------------


def _in_generator(phase: Callable[..., Coroutine[Any, Any, T]], args: tuple[Any, ...]) -> T:
    """Run one phase's coroutine on a fresh event loop (uvloop if installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(phase(*args))
    return uvloop.run(phase(*args))


@contextmanager
def load_generator() -> Iterator[Callable[..., Any]]:
    """A process of its own for the load: ``run(phase, *args)`` runs the coroutine
    function ``phase`` (a module-level function of this file) there and returns its
    result. The process is started once and reused by every phase."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:

        def run(phase: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
            return pool.submit(_in_generator, phase, args).result()

        yield run


def prepare_pool(server: Server, slug: str, api_key: str) -> Device:
    """A seat pool with a unit counter, redeemed into a container, one device registered."""
    admin = httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    )
    with admin:
        product = _created(
            admin, "/products", {"code": "SEATS", "name": "Seats", "features": [{"code": "run"}]}
        )
        options = {
            "delivery": "seat_pool",
            "seats": POOL_SEATS,
            "seat_counting": "per_process",
            "units": 10**12,
            "seat_lease_seconds": 600,
        }
        body = {"sku": "SEATS-1", "name": "Seats", "product_id": product["id"]}
        template = _created(admin, "/templates", body | {"features": ["run"], "options": options})
        order = _created(
            admin, "/orders", {"external_order_id": "SEATS", "lines": [{"sku": template["sku"]}]}
        )
        cloud = f"/vendors/{slug}/cloud"
        redeemed = _created(admin, f"{cloud}/redeem", {"ticket": order["ticket_code"]})
        device = _created(
            admin, f"{cloud}/devices", {"credential": redeemed["credential"], "name": "bench"}
        )
    base = f"/api/v1{cloud}/"
    return Device(server.url, base, device["token"], redeemed["license_ids"][0], "SEATS")


def _created(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    if response.status_code != 201:
        raise BenchSetupError(f"POST {path}: {response.status_code} {response.text}")
    data: dict[str, Any] = response.json()
    return data


async def _call(
    client: HttpPool,
    result: LoadResult,
    method: str,
    url: str,
    expect: int,
    body: dict[str, Any] | None = None,
) -> Any:
    """One request; its latency (waiting for a free connection included) is recorded
    if the status is ``expect``. Returns the JSON answer (True for an empty one), or
    None after recording the error."""
    request = client.prepare(method, url, body)
    sent = time.perf_counter()
    try:
        async with asyncio.timeout(60.0):
            status, data = await client.send(request)
    except (OSError, TimeoutError) as error:
        _failed(result, f"{type(error).__name__}: {error}")
        return None
    if status != expect:
        _failed(result, f"HTTP {status}: {data[:200].decode(errors='replace')}")
        return None
    result.latencies.append(time.perf_counter() - sent)
    return json.loads(data) if data else True


def _failed(result: LoadResult, message: str) -> None:
    result.errors += 1
    result.first_error = result.first_error or message


# -- seat operations next to the bare UPDATE -------------------------------------------


async def seat_cycles(device: Device, concurrency: int, seconds: float) -> LoadResult:
    """Each client loops checkout → heartbeat → release; every call is one operation."""
    result = LoadResult()
    async with device.client(concurrency) as client:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker(number: int) -> None:
            holder = {"product": device.product, "user": f"u{number}", "device": "bench"}
            holder["process"] = f"p{number}"
            while time.perf_counter() < deadline:
                lease = await _call(client, result, "POST", device.url("seats"), 201, holder)
                if lease is None:
                    continue
                beat = device.url(f"seats/{lease['lease_id']}/heartbeat")
                await _call(client, result, "POST", beat, 200, {"fence": lease["fence"]})
                release = f"seats/{lease['lease_id']}?fence={lease['fence']}"
                await _call(client, result, "DELETE", device.url(release), 204)

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        result.seconds = time.perf_counter() - start
    return result


_BARE_UPDATE = """
UPDATE seat_slots
   SET holder_key = %(key)s, lease_id = %(lease)s, fence = fence + 1, acquired_at = %(now)s,
       expires_at = %(now)s, released_at = NULL, borrowed = false,
       user_name = %(user)s, device_name = 'bench', process_id = %(key)s
 WHERE id = %(slot)s AND (expires_at IS NULL OR expires_at <= %(now)s)
RETURNING fence
"""


def bare_updates(dsn: str, slots: list[str], *, seconds: float) -> LoadResult:
    """One conditional UPDATE per transaction from one thread per slot; each lease ends
    where it starts (``expires_at = now``) so the slot is free for the next round."""
    result, lock = LoadResult(), threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(slot: str) -> None:
        latencies: list[float] = []
        with psycopg.connect(dsn) as connection:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                with connection.transaction(), connection.cursor() as cursor:
                    now = datetime.now(UTC)
                    params = {"key": slot, "lease": str(uuid.uuid4()), "now": now, "user": "u"}
                    cursor.execute(_BARE_UPDATE, params | {"slot": slot})
                    taken = cursor.fetchone() is not None
                if taken:
                    latencies.append(time.perf_counter() - sent)
        with lock:
            result.latencies.extend(latencies)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(slot,)) for slot in slots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - start
    return result


def checkpoint(dsn: str) -> None:
    """Write out what the phase before left in PostgreSQL's buffers (the bare UPDATEs
    dirty thousands of pages), so that the next phase does not pay for it. Needs a
    superuser, as the benchmark's default database URL has; skipped otherwise."""
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute("CHECKPOINT")
    except psycopg.errors.InsufficientPrivilege:
        pass


def free_slots(dsn: str, license_id: str, count: int) -> list[str]:
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT id FROM seat_slots WHERE license_id = %s ORDER BY slot DESC LIMIT %s",
            (license_id, count),
        ).fetchall()
    return [str(row[0]) for row in rows]


def psycopg_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- heartbeat capacity ----------------------------------------------------------------


@dataclass(frozen=True)
class HeartbeatStep:
    target: float
    result: LoadResult

    @property
    def achieved(self) -> float:
        return self.result.rate

    @property
    def sustained(self) -> bool:
        return (
            self.result.errors == 0
            and self.achieved >= 0.95 * self.target
            and self.result.percentile_ms(99) < HEARTBEAT_P99_GOAL_MS
        )


async def hold_leases(device: Device, count: int) -> list[tuple[str, int]]:
    """Check ``count`` leases out (distinct holders); raises BenchSetupError on a refusal."""
    async with device.client(32) as client:
        semaphore = asyncio.Semaphore(32)

        async def take(number: int) -> tuple[str, int]:
            holder = {"product": device.product, "user": f"h{number}", "device": "hb"}
            result = LoadResult()
            async with semaphore:
                answer = await _call(
                    client,
                    result,
                    "POST",
                    device.url("seats"),
                    201,
                    holder | {"process": f"h{number}"},
                )
            if answer is None:
                raise BenchSetupError(f"checkout for the heartbeat test: {result.first_error}")
            return answer["lease_id"], answer["fence"]

        return list(await asyncio.gather(*(take(n) for n in range(count))))


async def heartbeat_step(
    client: HttpPool,
    device: Device,
    leases: list[tuple[str, int]],
    *,
    rate: float,
    seconds: float,
) -> HeartbeatStep:
    """Heartbeats sent open-loop at ``rate`` per second (each on its own schedule, not
    waiting for the previous answer), so a slow server shows as latency, not as a
    politely lower rate."""
    result = LoadResult()
    cycle = itertools.cycle(leases)
    start = time.perf_counter()

    async def beat(lease: str, fence: int) -> None:
        url = device.url(f"seats/{lease}/heartbeat")
        await _call(client, result, "POST", url, 200, {"fence": fence})

    tasks = []
    for number in range(int(rate * seconds)):
        delay = start + number / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(beat(*next(cycle))))
    await asyncio.gather(*tasks)
    result.seconds = max(seconds, time.perf_counter() - start)
    return HeartbeatStep(rate, result)


async def heartbeat_capacity(
    device: Device, leases: list[tuple[str, int]], step_seconds: float
) -> list[HeartbeatStep]:
    """Rising rates until one is not sustained (p99 >= 50 ms, errors, or falling behind),
    on one pool of connections warmed up first. A step that fails is run once more
    before the climb ends: a few seconds' p99 is one stall of the machine away from
    50 ms (a checkpoint's writes, another process), and both tries are reported."""
    steps: list[HeartbeatStep] = []
    async with device.client(256) as client:
        await heartbeat_step(client, device, leases, rate=HEARTBEAT_RATES[0], seconds=1.0)
        for rate in HEARTBEAT_RATES:
            step = await heartbeat_step(client, device, leases, rate=rate, seconds=step_seconds)
            steps.append(step)
            if not step.sustained:
                step = await heartbeat_step(client, device, leases, rate=rate, seconds=step_seconds)
                steps.append(step)
            if not step.sustained:
                break
    return steps


# -- one hot counter -------------------------------------------------------------------


async def hot_counter(
    device: Device, consumers: int, seconds: float
) -> tuple[LoadResult, set[str]]:
    """``consumers`` clients take one unit each per call, each call with a fresh key;
    returns the load and the keys acknowledged."""
    result, acknowledged = LoadResult(), set()
    async with device.client(consumers) as client:
        deadline = time.perf_counter() + seconds
        start = time.perf_counter()

        async def worker() -> None:
            while time.perf_counter() < deadline:
                key = str(uuid.uuid4())
                body = {"product": device.product, "units": 1, "key": key}
                url = device.url("counters/consume")
                if await _call(client, result, "POST", url, 200, body) is not None:
                    acknowledged.add(key)

        await asyncio.gather(*(worker() for _ in range(consumers)))
        result.seconds = time.perf_counter() - start
    return result, acknowledged


def audit_counter(
    server: Server, api_key: str, license_id: str, acknowledged: set[str]
) -> dict[str, Any]:
    """Compare the ledger with what was acknowledged."""
    units = httpx.get(
        f"{server.url}/api/v1/licenses/{license_id}/units",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=120,
    ).json()
    keys = [entry["key"] for entry in units["ledger"] if entry["kind"] == "consume"]
    initial = sum(e["delta"] for e in units["ledger"] if e["kind"] == "initial")
    return {
        "ledger_entries": len(keys),
        "double_counts": len(keys) - len(set(keys)) + len(set(keys) - acknowledged),
        "missing": len(acknowledged - set(keys)),
        "balance_matches": units["balance"]
        == units["recomputed_from_ledger"]
        == initial - len(acknowledged),
    }


# -- the whole section -----------------------------------------------------------------


def measure_seats(
    env: Environment, server: Server, slug: str, api_key: str, config: SeatBenchConfig
) -> dict[str, Any]:
    """Every figure of this section as a JSON-able report (see :func:`rows`)."""
    device = prepare_pool(server, slug, api_key)
    with load_generator() as run:
        run(seat_cycles, device, config.concurrency, 1.0)  # warm up
        http = run(seat_cycles, device, config.concurrency, config.seconds)
        dsn = psycopg_dsn(env.database_url)
        bare = bare_updates(
            dsn, free_slots(dsn, device.license_id, config.concurrency), seconds=config.seconds
        )
        leases = run(hold_leases, device, config.leases)
        checkpoint(dsn)
        steps = run(heartbeat_capacity, device, leases, config.step_seconds)
        checkpoint(dsn)
        load, acknowledged = run(hot_counter, device, config.consumers, config.seconds)
    audit = audit_counter(server, api_key, device.license_id, acknowledged)
    return {
        "seat_ops": _seat_ops_row(http, bare, config.concurrency),
        "heartbeat": _heartbeat_row(steps, config.leases),
        "consumption": _consumption_row(load, audit, config.consumers),
    }


def _seat_ops_row(http: LoadResult, bare: LoadResult, concurrency: int) -> dict[str, Any]:
    ratio = http.rate / bare.rate if bare.rate else 0.0
    return {
        "clients": concurrency,
        "seat_ops_per_s": round(http.rate, 1),
        "p50_ms": round(http.percentile_ms(50), 1),
        "p99_ms": round(http.percentile_ms(99), 1),
        "errors": http.errors,
        "first_error": http.first_error,
        "bare_update_tx_per_s": round(bare.rate, 1),
        "bare_p50_ms": round(bare.percentile_ms(50), 2),
        "ratio": round(ratio, 3),
        "goal": f">= {SEAT_OPS_GOAL:.0f}/s and ratio >= {SEAT_RATIO_GOAL}",
        "goal_met": http.rate >= SEAT_OPS_GOAL and ratio >= SEAT_RATIO_GOAL,
    }


def _heartbeat_row(steps: list[HeartbeatStep], leases: int) -> dict[str, Any]:
    sustained = [step for step in steps if step.sustained]
    best = max((step.target for step in sustained), default=0.0)
    return {
        "leases_held": leases,
        "steps": [
            {
                "target_per_s": step.target,
                "achieved_per_s": round(step.achieved, 1),
                "p50_ms": round(step.result.percentile_ms(50), 1),
                "p99_ms": round(step.result.percentile_ms(99), 1),
                "errors": step.result.errors,
                "sustained": step.sustained,
            }
            for step in steps
        ],
        "sustained_heartbeats_per_s": best,
        "active_leases_at_60s": int(best * HEARTBEAT_PERIOD_S),
        "first_error": next((s.result.first_error for s in steps if s.result.first_error), None),
        "goal": f">= {LEASES_GOAL:,} leases (p99 < {HEARTBEAT_P99_GOAL_MS:.0f} ms)",
        "goal_met": best * HEARTBEAT_PERIOD_S >= LEASES_GOAL,
    }


def _consumption_row(load: LoadResult, audit: dict[str, Any], consumers: int) -> dict[str, Any]:
    return {
        "clients": consumers,
        "consumptions_per_s": round(load.rate, 1),
        "acknowledged": load.ok,
        "p50_ms": round(load.percentile_ms(50), 1),
        "p99_ms": round(load.percentile_ms(99), 1),
        "errors": load.errors,
        "first_error": load.first_error,
        **audit,
        "goal": "zero double counts",
        "goal_met": audit["double_counts"] == 0
        and audit["missing"] == 0
        and audit["balance_matches"],
    }


def rows(report: dict[str, Any] | None) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows: benchmark, measured, reference, ratio / rate, goal, met."""
    if not report:
        return []
    ops, beat, use = report["seat_ops"], report["heartbeat"], report["consumption"]
    last = beat["steps"][-1] if beat["steps"] else {"p99_ms": 0, "target_per_s": 0}
    return [
        (
            f"seat ops (checkout/heartbeat/release), {ops['clients']} clients",
            f"{ops['seat_ops_per_s']} ops/s, p99 {ops['p99_ms']} ms",
            f"bare conditional UPDATE {ops['bare_update_tx_per_s']} tx/s",
            f"{ops['ratio']}",
            ops["goal"],
            ops["goal_met"],
        ),
        (
            "heartbeat capacity, one node",
            f"{beat['sustained_heartbeats_per_s']:.0f} heartbeats/s sustained",
            f"next step {last['target_per_s']}/s: p99 {last['p99_ms']} ms",
            f"{beat['active_leases_at_60s']:,} leases at 60 s",
            beat["goal"],
            beat["goal_met"],
        ),
        (
            f"consume on one hot counter, {use['clients']} clients",
            f"{use['consumptions_per_s']} consumptions/s",
            f"p99 {use['p99_ms']} ms, {use['double_counts']} double counts",
            f"{use['consumptions_per_s']}/s",
            use["goal"],
            use["goal_met"],
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.seats``: this section alone, on a throwaway PostgreSQL database."""
    parser = argparse.ArgumentParser(prog="python -m bench.seats", description=__doc__)
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase (default 8)")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp,
        throwaway_database("postgresql", Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp))
        tenant = prepare(env)
        config = SeatBenchConfig(seconds=args.seconds, step_seconds=args.seconds / 2)
        with running_server(env, workers=args.workers) as server:
            report = measure_seats(env, server, tenant.slug, tenant.api_key, config)
    report |= {"workers": args.workers, "load_average_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
