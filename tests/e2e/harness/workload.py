"""The racing clients: each a CloudClient doing seat cycles and consumptions until a
deadline. Threads run in the test process; ``python -m tests.e2e.harness.workload``
runs more of them in a worker process and writes their history as JSON lines.

``python -m tests.e2e.harness.workload hold CONFIG`` is the SIGKILL victim instead:
it checks a seat out, prints ``HELD <lease id>`` and keeps heartbeating until killed.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from licentia.client import (
    CloudClient,
    NoSeatAvailableError,
    RetryPolicy,
    SeatLostError,
    TransportError,
    UnitsExhaustedError,
)
from tests.e2e.harness.history import History, RecordingTransport

RETRY = RetryPolicy(attempts=5, base=0.05, cap=1.0, budget=5.0)
SHARED_KEYS = 40  # consumption keys every client may send: the repeated keys of the race


@dataclass(frozen=True)
class Race:
    """What every client of one race needs to know."""

    urls: list[str]
    licred: str
    jwks: dict[str, Any]
    product: str
    state_root: str
    start_at: float  # every client is built and registered by then
    stop_at: float
    seed: int
    lose: float = 0.05

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> Race:
        return cls(**json.loads(path.read_text()))


def shared_key(rng: random.Random) -> tuple[str, int]:
    """One of the repeated keys, always with the same amount (1-3 units)."""
    number = rng.randrange(SHARED_KEYS)
    return f"shared-{number}", 1 + number % 3


def client_for(race: Race, name: str, history: History, rng: random.Random) -> CloudClient:
    transport = RecordingTransport(race.urls, history, name, rng=rng, lose=race.lose)
    return CloudClient(
        race.licred,
        public_keys=race.jwks,
        state_dir=Path(race.state_root) / name,
        device_name=name,
        transport=transport,
        retry=RETRY,
        timeout=30,
    )


def run_client(
    race: Race, name: str, history: History, stop: threading.Event | None = None
) -> None:
    """Alternate seat cycles and consumptions until ``race.stop_at`` (or ``stop``)."""
    rng = random.Random(f"{race.seed}-{name}")
    with client_for(race, name, history, rng) as client:
        try:
            client.register()
        except Exception as error:
            history.fail(f"{name} could not register: {type(error).__name__}: {error}")
            return
        time.sleep(max(0.0, race.start_at - time.time()))
        while time.time() < race.stop_at and not (stop and stop.is_set()):
            try:
                if rng.random() < 0.55:
                    seat_cycle(client, race.product, name, rng)
                else:
                    consume_once(client, race.product, rng)
            except (NoSeatAvailableError, UnitsExhaustedError, TransportError):
                pass  # refusals and outages are part of the race; the history has them
            except Exception as error:  # anything else is a finding: stop and report it
                history.fail(f"{name}: {type(error).__name__}: {error}")
                return
            time.sleep(rng.uniform(0, 0.05))


def seat_cycle(client: CloudClient, product: str, name: str, rng: random.Random) -> None:
    wait = rng.choice([0, 0, 0, 0.5, 2])
    with client.seat(product, user=name, process=name, wait=wait) as seat:
        for _ in range(rng.randint(0, 2)):
            time.sleep(rng.uniform(0.01, 0.15))
            try:
                seat.heartbeat()
            except (SeatLostError, TransportError):
                return
        time.sleep(rng.uniform(0.01, 0.15))


def consume_once(client: CloudClient, product: str, rng: random.Random) -> None:
    if rng.random() < 0.3:
        key, units = shared_key(rng)
    else:
        key, units = f"k-{uuid.uuid4()}", rng.randint(1, 3)
    client.consume(product, units, key)


def run_threads(
    race: Race, names: list[str], history: History, stop: threading.Event | None = None
) -> None:
    """Start one thread per client name (all at once) and wait for them all."""
    threads = [
        threading.Thread(target=run_client, args=(race, name, history, stop), daemon=True)
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(1.0, race.stop_at - time.time() + 90))


def hold(race: Race) -> None:
    """Hold one seat until killed; print the lease once held."""
    history = History()
    client = client_for(race, "victim", history, random.Random(race.seed))
    seat = client.seat(race.product, user="victim", process="victim").acquire()
    print(f"HELD {seat.lease_id}", flush=True)
    while True:
        time.sleep(1)


def main(argv: list[str]) -> int:
    if argv[0] == "hold":
        hold(Race.load(Path(argv[1])))
        return 0
    race, prefix, count, out = Race.load(Path(argv[0])), argv[1], int(argv[2]), Path(argv[3])
    history = History()
    run_threads(race, [f"{prefix}-{n}" for n in range(count)], history)
    history.dump(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
