"""Webhook delivery: events delivered per second to a local receiver, next to the rate
of bare inserts into the outbox in the same run, and the delay from an event's commit
to its arrival at a steady 200 events/s.

1. **Bare inserts**: ``events`` outbox rows, each INSERTed and committed on its own
   (what a change's transaction adds for its event), one connection.
2. **Delivered**: those events, undispatched, are fanned out to one endpoint and
   delivered by ``workers`` delivery workers (``Deliverer.deliver_due``, the job of
   ``licentia serve``; on PostgreSQL they claim with SKIP LOCKED) to a receiver on
   loopback, in a process of its own, that answers 204 at once. Rate: events over
   the time until the last one arrived. Each request is signed per Standard
   Webhooks, as in production.
3. **Lag**: events are inserted at ``rate``/s for ``seconds`` while one worker runs as
   ``licentia serve`` does (a round as soon as an event commits in this process, else
   after ``LICENTIA_WEBHOOK_POLL_SECONDS``); the lag of an event is its arrival minus
   its commit, both read from the same clock.

``python -m bench.webhooks [--backend postgresql] [--events N]`` prints JSON;
``python -m bench`` runs it on each backend.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import multiprocessing
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.server import throwaway_database
from licentia.domain.actors import Actor, ActorKind, operator
from licentia.domain.ids import new_id
from licentia.domain.scopes import SCOPES
from licentia.domain.webhook_targets import TargetPolicy
from licentia.server.db.base import utcnow
from licentia.server.db.engine import Database, connect
from licentia.server.db.schema import upgrade
from licentia.server.keys.master import MasterKey
from licentia.server.migrations import models
from licentia.server.settings import Settings
from licentia.server.tenancy.services import create_vendor
from licentia.server.webhooks import outbox
from licentia.server.webhooks import services as webhooks
from licentia.server.webhooks.delivery import Deliverer
from licentia.server.webhooks.egress import delivery_client
from licentia.server.webhooks.models import WebhookEvent
from licentia.server.webhooks.outbox import payload

assert models.Base.metadata.tables  # every table mapped before the first flush
DELIVERED_GOAL_PG = 1000.0  # events/s
LAG_GOAL_S = 1.0  # p99 at LAG_RATE
LAG_RATE = 200
LOOPBACK = TargetPolicy(allow_http=True, allowed=(ipaddress.ip_network("127.0.0.0/8"),))
_INSERT = insert(WebhookEvent)


class Receiver:
    """A receiver on loopback that answers 204 at once (no verification: what is
    measured is the sender) and notes when each ``webhook-id`` arrived. It runs in a
    process of its own, as a vendor's receiver does not share the sender's
    interpreter; the bench asks it over a pipe."""

    def __init__(self) -> None:
        self.port = 0
        self._lock = threading.Lock()  # one question on the pipe at a time

    def start(self) -> Receiver:
        context = multiprocessing.get_context("spawn")
        self._pipe, theirs = context.Pipe()
        self._process = context.Process(target=_receive, args=(theirs,), daemon=True)
        self._process.start()
        self.port = self._pipe.recv()
        return self

    def stop(self) -> None:
        self._ask("stop")
        self._process.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def count(self) -> int:
        """How many distinct events have arrived."""
        return int(self._ask("count"))

    def arrived(self) -> dict[str, float]:
        """When each event arrived (``time.time()``)."""
        return dict(self._ask("arrived"))

    def _ask(self, question: str) -> Any:
        with self._lock:
            self._pipe.send(question)
            return self._pipe.recv()


def _receive(pipe: Connection) -> None:
    """The receiver's process: serve until told to stop, answering the bench's
    questions between requests."""
    arrived: dict[str, float] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, event_id = 0, ""
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"webhook-id":
                        event_id = value.strip().decode()
                await reader.readexactly(length)
                arrived[event_id] = time.time()
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        stopped = loop.create_future()

        def answer() -> None:
            question = pipe.recv()
            if question == "count":
                pipe.send(len(arrived))
            elif question == "arrived":
                pipe.send(arrived)
            else:
                pipe.send(None)
                stopped.set_result(None)

        loop.add_reader(pipe.fileno(), answer)
        pipe.send(server.sockets[0].getsockname()[1])
        await stopped
        server.close()

    asyncio.run(main())


def _setup(db: Database, master: MasterKey, url: str) -> str:
    """A vendor with one endpoint at ``url`` for every event; returns the vendor's id."""
    with db.transaction() as session:
        vendor = create_vendor(session, operator(), slug="bench-hooks", name="Bench")
        actor = Actor(ActorKind.API_KEY, "bench", vendor.id, frozenset(SCOPES))
        webhooks.create_endpoint(
            session, actor, master, url=url, event_types=["*"], targets=LOOPBACK
        )
        return vendor.id


def _event(vendor_id: str) -> dict[str, Any]:
    event_id, now = new_id(), utcnow()
    data = {"id": new_id(), "state": "suspended"}
    return {
        "id": event_id,
        "vendor_id": vendor_id,
        "type": "license.suspended",
        "object_type": "license",
        "object_id": data["id"],
        "payload": payload(event_id, "license.suspended", now.isoformat(), data),
        "created_at": now,
        "dispatched": False,
        "once_key": None,
    }


def _insert_one(db: Database, row: dict[str, Any]) -> float:
    """INSERT one event and commit; returns the time of the commit."""
    with db.transaction() as session:
        session.execute(_INSERT, row)
        outbox.wrote_events(session)  # its commit wakes the delivery loop
    return time.time()


def _bare_inserts(db: Database, vendor_id: str, events: int) -> float:
    started = time.perf_counter()
    for _ in range(events):
        _insert_one(db, _event(vendor_id))
    return events / (time.perf_counter() - started)


def _until(done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.005)


def _delivered(
    db: Database, master: MasterKey, receiver: Receiver, events: int, workers: int
) -> float:
    expected = receiver.count() + events
    started = time.time()
    threads = []
    for _ in range(workers):
        thread = threading.Thread(target=_drain, args=(db, master, receiver, expected))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    arrived = receiver.arrived()
    if len(arrived) < expected:
        raise RuntimeError(f"{expected - len(arrived)} events were not delivered")
    return events / (max(arrived.values()) - started)


def _drain(db: Database, master: MasterKey, receiver: Receiver, expected: int) -> None:
    with delivery_client(LOOPBACK, timeout=10) as http:
        deliverer = Deliverer(db, master, http)
        deadline = time.monotonic() + 300
        while receiver.count() < expected and time.monotonic() < deadline:
            if not deliverer.deliver_due():
                time.sleep(0.005)  # another worker holds the rest
        deliverer.close()


def _lag(
    db: Database, master: MasterKey, receiver: Receiver, vendor_id: str, seconds: float, poll: float
) -> list[float]:
    stop = threading.Event()

    wake = threading.Event()

    def serve() -> None:  # as licentia serve's loop: a round, then a commit or the poll
        with delivery_client(LOOPBACK, timeout=10) as http:
            deliverer = Deliverer(db, master, http)
            while not stop.is_set():
                wake.clear()
                deliverer.deliver_due()
                wake.wait(poll)
            deliverer.close()

    forget = outbox.on_commit(db.write_engine, wake.set)
    worker = threading.Thread(target=serve)
    worker.start()
    committed: dict[str, float] = {}
    started = time.perf_counter()
    for n in range(int(seconds * LAG_RATE)):
        time.sleep(max(0.0, started + n / LAG_RATE - time.perf_counter()))
        row = _event(vendor_id)
        committed[row["id"]] = _insert_one(db, row)
    expected = receiver.count() + len(committed)
    _until(lambda: receiver.count() >= expected, timeout=60)
    stop.set()
    wake.set()
    worker.join()
    forget()
    arrived = receiver.arrived()
    return sorted(arrived[i] - at for i, at in committed.items() if i in arrived)


def measure(backend: str, *, events: int = 3000, workers: int = 0, seconds: float = 10) -> dict:
    """The three figures on a throwaway database of ``backend``."""
    workers = workers or (4 if backend == "postgresql" else 1)
    poll = Settings().webhook_poll_seconds
    master = MasterKey(secrets.token_bytes(32))
    receiver = Receiver().start()
    with (
        tempfile.TemporaryDirectory(prefix="licentia-bench-") as tmp,
        throwaway_database(backend, Path(tmp)) as url,
    ):
        upgrade(url)
        db = connect(url, pool_size=workers + 2)
        try:
            vendor_id = _setup(db, master, receiver.url)
            bare = _bare_inserts(db, vendor_id, events)
            delivered = _delivered(db, master, receiver, events, workers)
            lags = _lag(db, master, receiver, vendor_id, seconds, poll)
        finally:
            db.dispose()
            receiver.stop()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else float("inf")
    goal_pg = backend == "postgresql"
    return {
        "backend": backend,
        "events": events,
        "workers": workers,
        "bare_inserts_per_s": round(bare, 1),
        "delivered_per_s": round(delivered, 1),
        "ratio": round(delivered / bare, 3),
        "delivered_goal": f">= {DELIVERED_GOAL_PG:.0f}/s" if goal_pg else None,
        "delivered_goal_met": delivered >= DELIVERED_GOAL_PG if goal_pg else None,
        "lag_rate_per_s": LAG_RATE,
        "lag_events": len(lags),
        "poll_seconds": poll,
        "lag_p50_ms": round(statistics.median(lags) * 1e3, 1) if lags else None,
        "lag_p99_ms": round(p99 * 1e3, 1),
        "lag_goal": f"p99 < {LAG_GOAL_S * 1e3:.0f} ms",
        "lag_goal_met": p99 < LAG_GOAL_S,
    }


def rows(reports: list[dict[str, Any]]) -> list[tuple[str, str, str, str, str, bool | None]]:
    """Table rows: benchmark, measured, reference, ratio, goal, met."""
    found = []
    for report in reports:
        backend = report["backend"]
        found += [
            (
                f"webhook events delivered, {backend}, {report['workers']} worker(s)",
                f"{report['delivered_per_s']:.0f} events/s",
                f"bare outbox inserts {report['bare_inserts_per_s']:.0f}/s",
                f"{report['ratio']}",
                report["delivered_goal"] or "",
                report["delivered_goal_met"],
            ),
            (
                f"webhook lag at {report['lag_rate_per_s']} events/s, {backend}",
                f"p99 {report['lag_p99_ms']} ms",
                f"p50 {report['lag_p50_ms']} ms, poll {report['poll_seconds']} s",
                "",
                report["lag_goal"],
                report["lag_goal_met"],
            ),
        ]
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument(
        "--workers", type=int, default=0, help="default: 4 on PostgreSQL, 1 on SQLite"
    )
    parser.add_argument("--seconds", type=float, default=10, help="of the lag phase")
    args = parser.parse_args(argv)
    reports = [
        measure(backend, events=args.events, workers=args.workers, seconds=args.seconds)
        for backend in args.backend or ["postgresql"]
    ]
    print(json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
