"""How long a large transaction holds its vendor's audit chain, as another writer sees it.

On PostgreSQL a vendor's writers share one lock: the head row of its audit chain,
taken when a transaction's events are appended (at commit) and released by the
COMMIT. Here one transaction records ``events`` events (an order of as many
licenses records one per license) and commits, while a second connection polls the
head with ``FOR UPDATE NOWAIT``: once it finds the head taken, it waits for it with a
plain ``FOR UPDATE`` and reports how long that took (the poll adds at most its own
interval). ``python -m bench.audit_append [--events N] [--rounds R]`` prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from bench.server import throwaway_database
from licentia.domain.actors import operator
from licentia.server.audit.services import record
from licentia.server.db.engine import connect
from licentia.server.db.schema import upgrade
from licentia.server.migrations import models

assert models.Base.metadata.tables  # every table mapped before the first flush
CHAIN = "operator"
POLL_SECONDS = 0.002


def _record(url: str, events: int) -> None:
    database = connect(url, pool_size=1)
    try:
        with Session(database.write_engine) as session, session.begin():
            for n in range(events):
                record(session, operator(), "license.issued", "license", f"bench-{n}", after={})
    finally:
        database.dispose()


def _held(dsn: str, done: threading.Event) -> float | None:
    """Seconds the head was waited for, once it was found taken (None: never seen)."""
    with psycopg.connect(dsn, autocommit=False) as connection:
        while not done.is_set():
            try:
                connection.execute(
                    "SELECT seq FROM audit_heads WHERE chain = %s FOR UPDATE NOWAIT", (CHAIN,)
                )
                connection.rollback()
            except psycopg.errors.LockNotAvailable:
                connection.rollback()
                started = time.perf_counter()
                connection.execute(
                    "SELECT seq FROM audit_heads WHERE chain = %s FOR UPDATE", (CHAIN,)
                )
                connection.rollback()
                return time.perf_counter() - started + POLL_SECONDS
            time.sleep(POLL_SECONDS)
    return None


def measure(url: str, events: int, rounds: int) -> dict[str, Any]:
    upgrade(url)
    _record(url, 1)  # the chain's head exists before the rounds
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    held: list[float] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        for _ in range(rounds):
            done = threading.Event()
            waited = pool.submit(_held, dsn, done)
            _record(url, events)
            done.set()
            if (seconds := waited.result()) is not None:
                held.append(seconds)
    return {
        "events": events,
        "rounds": rounds,
        "seen": len(held),
        "held_p50_ms": round(statistics.median(held) * 1e3, 1) if held else None,
        "held_max_ms": round(max(held) * 1e3, 1) if held else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_append", description=__doc__)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with throwaway_database("postgresql", Path(".")) as url:
        print(json.dumps(measure(url, args.events, args.rounds), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
