"""The history of a race: one record per HTTP exchange a client made.

Clients talk through :class:`RecordingTransport`, so what is recorded is what really
went over the wire, retries included. Times are wall-clock seconds (``time.time()``)
because the servers stamp leases and events with the same machine's wall clock.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

# Answers that may be lost after the server acted: operations the SDK retries
# idempotently (a checkout reconnects, a consumption replays its key).
LOSABLE = frozenset({"checkout", "consume"})


@dataclass
class Operation:
    """One exchange. ``status`` None: no answer reached the client (indeterminate)."""

    client: str
    kind: str
    node: str
    invoked: float
    completed: float = 0.0
    status: int | None = None
    request: dict[str, Any] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=dict)
    lease_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 300

    @property
    def code(self) -> str | None:
        code = self.answer.get("code")
        return code if isinstance(code, str) else None


class History:
    """A thread-safe append-only list of operations, loadable from worker processes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.operations: list[Operation] = []
        self.failures: list[str] = []  # a client that stopped on an unexpected error

    def add(self, operation: Operation) -> None:
        with self._lock:
            self.operations.append(operation)

    def fail(self, message: str) -> None:
        with self._lock:
            self.failures.append(message)

    def dump(self, path: Path) -> None:
        with self._lock, path.open("w") as out:
            for operation in self.operations:
                out.write(json.dumps({"operation": asdict(operation)}) + "\n")
            for message in self.failures:
                out.write(json.dumps({"failure": message}) + "\n")

    def merge(self, path: Path) -> None:
        """Add what a worker process dumped to ``path``."""
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "operation" in record:
                self.add(Operation(**record["operation"]))
            else:
                self.fail(record["failure"])


def classify(method: str, path: str) -> tuple[str, str | None]:
    """``(kind, lease id)`` of a request path under ``/cloud/``."""
    tail = path.split("/cloud/", 1)[-1]
    parts = tail.split("/")
    if parts[0] == "seats" and len(parts) == 3:
        return "heartbeat", parts[1]
    if parts[0] == "seats" and len(parts) == 2:
        return ("release" if method == "DELETE" else "seats?"), parts[1]
    names = {"seats": "checkout", "check": "check", "devices": "register"}
    if tail == "counters/consume":
        return "consume", None
    return names.get(tail, tail or path), None


class RecordingTransport(httpx.BaseTransport):
    """Sends each request to the next server (round robin), records it in ``history``,
    and loses the answer to a losable operation with probability ``lose``."""

    def __init__(
        self,
        urls: list[str],
        history: History,
        client: str,
        *,
        rng: random.Random,
        lose: float = 0.0,
    ) -> None:
        self._nodes = itertools.cycle([httpx.URL(url) for url in urls])
        for _ in range(rng.randrange(len(urls))):
            next(self._nodes)  # clients start on different nodes
        self._inner = httpx.HTTPTransport(verify=False)  # plain HTTP on loopback: no CA load
        self._history = history
        self._client = client
        self._rng = rng
        self._lose = lose

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        node = next(self._nodes)
        request.url = request.url.copy_with(host=node.host, port=node.port)
        request.headers["Host"] = f"{node.host}:{node.port}"
        kind, lease_id = classify(request.method, request.url.path)
        operation = Operation(
            self._client, kind, str(node), time.time(), request=_json(request.content)
        )
        operation.lease_id = lease_id
        try:
            response = self._inner.handle_request(request)
            content = response.read()
        except httpx.HTTPError:
            operation.completed = time.time()
            self._history.add(operation)
            raise
        operation.completed = time.time()
        if kind in LOSABLE and self._rng.random() < self._lose:
            self._history.add(operation)  # status None: the client never saw the answer
            raise httpx.ReadTimeout("answer lost on purpose", request=request)
        operation.status, operation.answer = response.status_code, _json(content)
        self._history.add(operation)
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def close(self) -> None:
        self._inner.close()


def _json(content: bytes) -> dict[str, Any]:
    try:
        value = json.loads(content) if content else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
