"""A vendor's webhook receiver on a loopback port: it verifies each request's Standard
Webhooks signature with the reference library, as a vendor's system would, and keeps
what it accepted. It can take its time over each request, go down (nothing listens on
its port) and come back, answer with an error status, or hold each request until
others have come (``together``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError


class _Server(ThreadingHTTPServer):
    # A sender opens many connections at once (a receiver's usual backlog; the
    # standard library's 5 would reset some of them).
    request_queue_size = 128


@dataclass
class Received:
    webhook_id: str
    payload: dict[str, Any]


@dataclass
class WebhookReceiver:
    secrets: list[str] = field(default_factory=list)  # any of them may verify
    status: int = 204  # what it answers a verified request
    redirect_to: str | None = None  # answer every request with a redirect there instead
    delay: float = 0.0  # seconds it takes before answering a request
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    active: int = 0  # requests it is answering now
    # When set, each request waits until the barrier's other parties have come too
    # (answering 503 if they do not): proof that the sender sends them together.
    together: threading.Barrier | None = None
    # Objects (the payload's data.id) a request came for while another one for the
    # same object was still being answered.
    overlapping: list[str] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _in_flight: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with receiver._lock:
                    receiver.active += 1
                try:
                    self._answer()
                except ConnectionError:
                    pass  # the sender went away (it was killed) before the answer
                finally:
                    with receiver._lock:
                        receiver.active -= 1

            def _answer(self) -> None:
                length = int(self.headers["content-length"])
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died in the middle of its request: nothing came
                if receiver.redirect_to is not None:
                    self.send_response(307)
                    self.send_header("location", receiver.redirect_to)
                    self.end_headers()
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                if receiver.delay:
                    time.sleep(receiver.delay)
                with receiver.answering(body):
                    status = receiver.accept(body, headers) if receiver.met() else 503
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"receiver says hello")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @contextmanager
    def answering(self, body: bytes) -> Iterator[None]:
        """Note the request's object as being answered, and which came twice at once."""
        object_id = str(json.loads(body).get("data", {}).get("id"))
        with self._lock:
            if object_id in self._in_flight:
                self.overlapping.append(object_id)
            self._in_flight[object_id] = self._in_flight.get(object_id, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[object_id] -= 1
                if not self._in_flight[object_id]:
                    del self._in_flight[object_id]

    def met(self) -> bool:
        """Whether the request's companions came (True when none are awaited)."""
        if self.together is None:
            return True
        try:
            self.together.wait()
        except threading.BrokenBarrierError:
            return False
        return True

    def accept(self, body: bytes, headers: dict[str, str]) -> int:
        for secret in self.secrets:
            try:
                payload = Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            if self.status < 300:
                with self._lock:
                    self.received.append(Received(headers["webhook-id"], payload))
            return self.status
        with self._lock:
            self.refused += 1
        return 401

    def stop(self) -> None:
        """Go down: nothing listens on the port until ``start`` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> set[str]:
        """The ``webhook-id`` of every event it accepted (a redelivery counts once)."""
        with self._lock:
            return {r.webhook_id for r in self.received}

    def types(self) -> list[str]:
        return [r.payload["type"] for r in self.received]

    def json(self) -> str:
        return json.dumps([r.payload for r in self.received])
