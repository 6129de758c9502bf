"""Abuse limits (docs/security.md): what the rate limiter costs the hottest call, and
what a flood of guessers costs a legitimate client. ``python -m bench.abuse`` runs
only this part; ``python -m bench`` runs it with the rest.

- **Limiter cost**: ``GET /api/v1/licenses/{id}`` per second from 8 wrk connections
  against a server counting every request (the default storage and strategy, with
  limits too high to refuse anything), next to a server on the same database with
  the limits off, in 8 pairs of rounds back to back (``bench/pairs.py``); the ratio is
  the median pair's. Goal: ratio ≥ 0.9.
- **A flood**: the p99 latency of a legitimate client (an ERP reading licenses by id
  with its API key, 100 a second at a steady pace) while 100 attackers, each from a
  loopback address of its own, send wrong logins (a new e-mail each time, as a
  credential-stuffing list does) and well-formed random ticket codes as fast as they
  are answered, next to its p99 with nobody else calling, against one server with the
  default limits. Each read's latency counts from the moment it was due, not from when
  it was sent, so a stall counts once for every read it held up. 6 pairs of 6 s
  phases, one alone and one among the attackers (which comes first alternates); the
  attackers start 0.2 s before the reads beside them, so each phase holds the flood's
  first moments, when every address still has its allowed guesses; new addresses each
  round. The ratio is the median pair's (``bench/pairs.py`` measures the limiter's
  cost alike), so that one late scheduling on a busy machine moves one pair, not the
  figure. Goal: ratio ≤ 3. The legitimate client and the attackers run in processes
  of their own, started before the first round, so neither's event loop delays the
  other's measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import secrets
import statistics
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api import seed_catalog
from bench.http import HttpPool
from bench.load import LoadResult
from bench.pairs import PairedRates, measure_pairs, variant
from bench.server import (
    BenchSetupError,
    Environment,
    new_environment,
    prepare,
    running_server,
    throwaway_database,
)
from bench.wrk import Request
from licentia.formats.tickets import generate_ticket_code

LIMITER_GOAL = 0.9  # hot call rate with the limiter on / off
FLOOD_GOAL = 3.0  # legitimate p99 with the flood / without
ATTACKERS = 100
FLOOD_ROUNDS = 6  # pairs of phases, alone and among the attackers
LEGIT_RATE = 100.0  # requests a second
FLOOD_LEAD = 0.2  # seconds the attackers start before the reads they are measured beside
SETTLE = 1.0  # seconds of nobody calling before each phase
NEVER_REFUSED = "100000000/minute"  # counted, never reached


@dataclass(frozen=True)
class FloodCost:
    """The legitimate client's reads alone (``quiet``) and among the attackers
    (``flooded``), every round merged; each round's flooded/quiet p99 ratio; and the
    attackers' answers by status."""

    quiet: LoadResult
    flooded: LoadResult
    pair_ratios: tuple[float, ...]
    attacks: dict[int, int]

    @property
    def ratio(self) -> float:
        return statistics.median(self.pair_ratios) if self.pair_ratios else 0.0


def measure_limiter_cost(
    env: Environment, license_id: str, api_key: str, *, rounds: int, seconds: float
) -> PairedRates:
    """Pairs of wrk rounds against two servers on one database, limits on and off."""
    counted = variant(env, rate_limits="true", rate_limit_api=NEVER_REFUSED)
    read = Request("GET", f"/api/v1/licenses/{license_id}", 200, f"Bearer {api_key}")
    return measure_pairs(counted, env, read, rounds=rounds, seconds=seconds)


# -- the flood: phases run in processes of their own -----------------------------------


def _run(phase: Any, *args: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(phase(*args))
    return uvloop.run(phase(*args))


async def legitimate_reads(url: str, api_key: str, license_id: str, seconds: float) -> LoadResult:
    """``LEGIT_RATE`` reads a second for ``seconds``: each sent at its
    scheduled moment whether or not the earlier ones were answered (on up to 4
    connections), its latency counted from that moment. A client that waited for each
    answer before sending the next would send nothing during a stall and count it once
    (coordinated omission); here every read scheduled during it counts what it waited."""
    result = LoadResult()
    async with HttpPool(url, 4, {"Authorization": f"Bearer {api_key}"}) as pool:
        request = pool.prepare("GET", f"/api/v1/licenses/{license_id}")

        async def read(scheduled: float) -> None:
            status, body = await pool.send(request)
            if status == 200:
                result.latencies.append(time.perf_counter() - scheduled)
            else:
                result.errors += 1
                result.first_error = result.first_error or f"{status} {body[:200]!r}"

        started = time.perf_counter()
        reads = []
        for n in range(int(seconds * LEGIT_RATE)):
            scheduled = started + n / LEGIT_RATE
            pause = scheduled - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            reads.append(asyncio.create_task(read(scheduled)))
        await asyncio.gather(*reads)
        result.seconds = time.perf_counter() - started
    return result


async def _attacker(url: str, slug: str, number: int, until: float) -> Counter[int]:
    seen: Counter[int] = Counter()
    address = f"127.0.{1 + number // 250}.{1 + number % 250}"
    async with HttpPool(url, 1, {}, local_address=address) as pool:
        while time.perf_counter() < until:
            email = f"{secrets.token_hex(6)}@example.com"
            login = {"vendor": slug, "email": email, "password": "x"}
            guess = {"ticket": generate_ticket_code()}
            for method, path, body in (
                ("POST", "/api/v1/sessions", login),
                ("POST", f"/api/v1/vendors/{slug}/cloud/redeem", guess),
            ):
                try:
                    status, _ = await pool.send(pool.prepare(method, path, body))
                except OSError:
                    status = 0
                seen[status] += 1
    return seen


async def attackers(url: str, slug: str, first: int, seconds: float) -> dict[int, int]:
    """``ATTACKERS`` attackers for ``seconds``, numbered from ``first`` (each number is
    a loopback address of its own)."""
    until = time.perf_counter() + seconds
    counts = await asyncio.gather(
        *(_attacker(url, slug, first + n, until) for n in range(ATTACKERS))
    )
    return dict(sum(counts, Counter()))


def _ready(pause: float) -> None:
    """Run in a pool's process before any round: its imports done, and held for
    ``pause`` so that a second call at once starts the pool's other process."""
    time.sleep(pause)


def measure_flood(
    url: str, slug: str, api_key: str, license_id: str, *, rounds: int, seconds: float
) -> FloodCost:
    """``rounds`` pairs of ``seconds`` of legitimate reads: one alone, one while 100
    attackers (new addresses each round) flood the server from its first moment on;
    which comes first alternates from round to round."""
    context = multiprocessing.get_context("spawn")
    quiet, flooded, ratios, attacks = LoadResult(), LoadResult(), [], Counter[int]()
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        for started in [pool.submit(_ready, 1.0) for _ in range(2)]:
            started.result()
        for round_ in range(rounds):
            phases: dict[bool, LoadResult] = {}
            for with_flood in (False, True) if round_ % 2 == 0 else (True, False):
                time.sleep(SETTLE)
                flood = (slug, round_ * ATTACKERS) if with_flood else None
                phases[with_flood], answers = _phase(pool, url, api_key, license_id, seconds, flood)
                attacks.update(answers)
            alone, among = phases[False], phases[True]
            quiet, flooded = quiet.merge(alone), flooded.merge(among)
            ratios.append(_p99_ratio(among, alone))
    return FloodCost(quiet, flooded, tuple(ratios), dict(attacks))


def _phase(
    pool: ProcessPoolExecutor,
    url: str,
    api_key: str,
    license_id: str,
    seconds: float,
    flood: tuple[str, int] | None,
) -> tuple[LoadResult, dict[int, int]]:
    """``seconds`` of legitimate reads, alone or among the attackers of ``flood`` (the
    vendor's slug, the first attacker's number), who start ``FLOOD_LEAD`` before the
    reads and outlast them by half a second; the reads, and the attackers' answers."""
    attack = None
    if flood is not None:
        attack = pool.submit(_run, attackers, url, *flood, FLOOD_LEAD + seconds + 0.5)
        time.sleep(FLOOD_LEAD)
    reads = pool.submit(_run, legitimate_reads, url, api_key, license_id, seconds)
    return reads.result(), attack.result() if attack is not None else {}


def _p99_ratio(flooded: LoadResult, quiet: LoadResult) -> float:
    alone = quiet.percentile_ms(99)
    return flooded.percentile_ms(99) / alone if alone else 0.0


# -- the figures --------------------------------------------------------------------------


def measure(
    backend: str = "sqlite", *, rounds: int = 8, seconds: float = 3.0, flood_only: bool = False
) -> dict[str, Any]:
    """Both figures on a throwaway database of ``backend``, as a report dict (the flood's
    alone with ``flood_only``)."""
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-abuse-") as tmp,
        throwaway_database(backend, Path(tmp)) as url,
    ):
        env = new_environment(url, Path(tmp))
        tenant = prepare(env)
        with running_server(env) as server:
            catalog = asyncio.run(seed_catalog(server.url, tenant.api_key))
        cost = None
        if not flood_only:
            cost = measure_limiter_cost(
                env, catalog.license_id, tenant.api_key, rounds=rounds, seconds=seconds
            )
        with running_server(variant(env, rate_limits="true")) as server:
            flood = measure_flood(
                server.url,
                tenant.slug,
                tenant.api_key,
                catalog.license_id,
                rounds=FLOOD_ROUNDS,
                seconds=2 * seconds,
            )
    return report(backend, cost, flood)


def report(backend: str, cost: PairedRates | None, flood: FloodCost) -> dict[str, Any]:
    return {
        "backend": backend,
        "limiter": None
        if cost is None
        else {
            "on_per_s": round(cost.on.rate, 1),
            "off_per_s": round(cost.off.rate, 1),
            "ratio": round(cost.ratio, 3),
            "round_ratios": [round(r, 3) for r in cost.pair_ratios],
            "errors": cost.errors,
            "first_error": cost.first_error,
            "goal": f">= {LIMITER_GOAL}",
            "goal_met": cost.ratio >= LIMITER_GOAL,
        },
        "flood": {
            "quiet_p99_ms": round(flood.quiet.percentile_ms(99), 2),
            "flooded_p99_ms": round(flood.flooded.percentile_ms(99), 2),
            "quiet_p50_ms": round(flood.quiet.percentile_ms(50), 2),
            "flooded_p50_ms": round(flood.flooded.percentile_ms(50), 2),
            "quiet_max_ms": round(max(flood.quiet.latencies, default=0.0) * 1e3, 2),
            "flooded_max_ms": round(max(flood.flooded.latencies, default=0.0) * 1e3, 2),
            "ratio": round(flood.ratio, 2),
            "round_ratios": [round(r, 2) for r in flood.pair_ratios],
            "legit_errors": flood.quiet.errors + flood.flooded.errors,
            "legit_first_error": flood.quiet.first_error or flood.flooded.first_error,
            "attacks": {str(status): n for status, n in sorted(flood.attacks.items())},
            "goal": f"<= {FLOOD_GOAL}",
            "goal_met": 0 < flood.ratio <= FLOOD_GOAL,
        },
    }


def rows(report: dict[str, Any] | None) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows: figure, measured, next to, ratio, goal, met."""
    if report is None:
        return []
    limiter, flood = report["limiter"], report["flood"]
    attacks = sum(flood["attacks"].values())
    refused = flood["attacks"].get("429", 0)
    busy = flood["attacks"].get("503", 0)
    table = []
    if limiter is not None:
        table.append(
            (
                f"GET license, limiter on, {report['backend']}",
                f"{limiter['on_per_s']:.0f} req/s",
                f"limiter off {limiter['off_per_s']:.0f} req/s",
                f"{limiter['ratio']:.2f}",
                limiter["goal"],
                limiter["goal_met"],
            )
        )
    table.append(
        (
            f"legit p99, {ATTACKERS} attackers, {report['backend']}",
            f"{flood['flooded_p99_ms']:.1f} ms",
            f"no attackers {flood['quiet_p99_ms']:.1f} ms "
            f"({attacks} attacks, {refused} answered 429, {busy} 503)",
            f"{flood['ratio']:.2f}",
            flood["goal"],
            flood["goal_met"],
        )
    )
    return table


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.abuse", description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--quick", action="store_true", help="short phases (a smoke run)")
    parser.add_argument("--flood-only", action="store_true", help="the flood's figure alone")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 3.0
    try:
        figures = measure(args.backend, seconds=seconds, flood_only=args.flood_only)
    except BenchSetupError as error:
        print(f"not measured: {error}")
        return 2
    print(json.dumps(figures, indent=2))
    for figure, measured, beside, ratio, goal, met in rows(figures):
        print(f"{figure}: {measured} (next to {beside}), ratio {ratio}, goal {goal}, met {met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
