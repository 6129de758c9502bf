"""The connections webhooks are sent over: each sending thread keeps its own alive
(none waits for another's), holds no more than its share, and closing the client
closes them all."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from licentia.domain.webhook_targets import TargetPolicy
from licentia.server.webhooks.egress import DeliveryClient

LOOPBACK = TargetPolicy(allow_http=True, allowed=(ipaddress.ip_network("127.0.0.0/8"),))
HEADERS = [(b"content-type", b"application/json")]


class KeepAliveReceiver:
    """Answers every POST 204 over HTTP/1.1, keeping the connection; counts the
    connections it accepted and the requests it answered."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with lock:
                    receiver.connections += 1

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                with lock:
                    receiver.requests += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[KeepAliveReceiver]]:
    started = [KeepAliveReceiver(), KeepAliveReceiver()]
    yield started
    for receiver in started:
        receiver.stop()


def client(**options: Any) -> DeliveryClient:
    # Idle connections are kept for as long as a test can take: what is counted is
    # the sender's reuse, not how fast a busy machine sends.
    return DeliveryClient(LOOPBACK, timeout=30, keepalive_expiry=3600, **options)


def test_each_sending_thread_sends_over_one_kept_alive_connection(receivers):
    receiver = receivers[0]
    answers: list[int] = []

    def send_many() -> None:
        for _ in range(25):
            answers.append(http.post(receiver.url, b"{}", HEADERS).status_code)

    with client() as http:
        threads = [threading.Thread(target=send_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [204] * 100
    assert receiver.requests == 100
    assert receiver.connections == 4  # one a thread, each kept for all its requests


def test_a_thread_at_its_share_of_connections_closes_an_idle_one_for_another_receiver(
    receivers,
):
    with client(connections_per_thread=1) as http:
        statuses = [http.post(receivers[n % 2].url, b"{}", HEADERS).status_code for n in range(6)]
    assert statuses == [204] * 6
    # With one connection to spare, each change of receiver opened a new one.
    assert [r.connections for r in receivers] == [3, 3]


def test_a_closed_client_closed_its_connections_and_opens_new_ones_if_used_again(receivers):
    receiver = receivers[0]
    http = client()
    assert http.post(receiver.url, b"{}", HEADERS).status_code == 204
    http.close()
    assert http.post(receiver.url, b"{}", HEADERS).status_code == 204
    http.close()
    assert (receiver.connections, receiver.requests) == (2, 2)
