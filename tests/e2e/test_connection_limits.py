"""Slow and numerous connections cannot take the server down: a request's headers and
body must arrive in time, and one client address (and the process as a whole) holds a
bounded number of connections, while everyone else, ``/healthz`` included, is answered.

The attackers connect from other loopback addresses (127.0.0.2, …) than the
legitimate client (127.0.0.1), as different hosts on the internet would.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.harness.cluster import migrate
from tests.support.servers import Server, new_environment, running_server

# What is checked here is the HTTP front, not the storage: one backend is enough.
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

PER_ADDRESS, MAX_CONNECTIONS = 50, 150
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: licentia.test\r\nX-Slow: "


def _server(database_url: str, workdir: Path, **settings: str) -> Iterator[Server]:
    extra = {f"LICENTIA_{name.upper()}": value for name, value in settings.items()}
    env = new_environment(database_url, workdir, extra)
    migrate(env)
    with running_server(env) as server:
        yield server


@pytest.fixture(scope="module")
def patient(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Waits long for headers, so that every connection it keeps is still open when
    counted."""
    yield from _server(
        database_url,
        tmp_path_factory.mktemp("patient"),
        header_timeout_seconds="300",
        max_connections=str(MAX_CONNECTIONS),
        max_connections_per_address=str(PER_ADDRESS),
    )


@pytest.fixture(scope="module")
def crowded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Like ``patient``, for the test that fills the process's cap (a server of its
    own: connections another test just closed may not have been counted out yet)."""
    yield from _server(
        database_url,
        tmp_path_factory.mktemp("crowded"),
        header_timeout_seconds="300",
        max_connections=str(MAX_CONNECTIONS),
        max_connections_per_address=str(PER_ADDRESS),
    )


@pytest.fixture(scope="module")
def strict(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _server(
        database_url,
        tmp_path_factory.mktemp("strict"),
        header_timeout_seconds="2",
        body_timeout_seconds="2",
        max_connections_per_address=str(PER_ADDRESS),
    )


def _connect(server: Server, source: str, first: bytes) -> socket.socket:
    """A connection from ``source`` that sent ``first`` (or was refused meanwhile)."""
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect((host, int(port)))
    with contextlib.suppress(OSError):  # already closed by the server: counted below
        sock.sendall(first)
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (call when it is readable)."""
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


def _await_closed(
    socks: list[socket.socket], count: int, *, drip: bool = False
) -> list[socket.socket]:
    """Wait (at most 60 s) until ``count`` of ``socks`` are closed by the server; those
    that were. ``drip``: meanwhile send one more header byte on each open one now and
    then, as a slow client that is never idle does."""
    open_ = list(socks)
    closed: list[socket.socket] = []
    deadline = time.monotonic() + 60
    while len(closed) < count and open_ and time.monotonic() < deadline:
        readable, _, _ = select.select(open_, [], [], 0.25)
        for sock in readable:
            if _closed_by_server(sock):
                open_.remove(sock)
                closed.append(sock)
        for sock in open_ if drip else ():
            with contextlib.suppress(OSError):
                sock.send(b"x")
    return closed


def _open_descriptors(server: Server) -> int:
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def _answered_eventually(url: str, source: str = "127.0.0.1") -> bool:
    """Whether ``/healthz`` answers from ``source`` within 30 s (the server counts
    closed connections out as it notices them)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                return client.get(f"{url}/healthz").status_code == 200
            time.sleep(0.1)
    return False


def _healthy(server: Server) -> bool:
    return httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_one_address_holds_at_most_its_share_and_everyone_else_is_answered(
    patient: Server,
) -> None:
    before = _open_descriptors(patient)
    attackers = [_connect(patient, "127.0.0.2", PARTIAL) for _ in range(2 * PER_ADDRESS)]
    try:
        assert _healthy(patient)
        assert httpx.get(f"{patient.url}/readyz", timeout=10).status_code == 200
        refused = _await_closed(attackers, PER_ADDRESS)
        assert len(refused) == PER_ADDRESS
        assert _open_descriptors(patient) - before <= PER_ADDRESS + 5
        kept = next(sock for sock in attackers if sock not in refused)
        kept.sendall(b"1\r\n\r\n")  # a kept connection is a real one: it is answered
        assert kept.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in attackers:
            sock.close()


def test_beyond_the_process_cap_a_connection_is_refused_at_once(crowded: Server) -> None:
    before = _open_descriptors(crowded)
    sources = [f"127.0.0.{n}" for n in range(3, 3 + 2 * MAX_CONNECTIONS // PER_ADDRESS)]
    attackers = [_connect(crowded, s, PARTIAL) for s in sources for _ in range(PER_ADDRESS)]
    try:
        refused = _await_closed(attackers, len(attackers) - MAX_CONNECTIONS)
        assert len(refused) == len(attackers) - MAX_CONNECTIONS
        assert _open_descriptors(crowded) - before <= MAX_CONNECTIONS + 5
    finally:
        for sock in attackers:
            sock.close()
    assert _answered_eventually(crowded.url)  # the attackers gone, their slots are free


def test_slow_requests_are_cut_off_while_a_legitimate_client_is_answered(strict: Server) -> None:
    idle = [_connect(strict, "127.0.0.2", b"") for _ in range(10)]
    slow_headers = [_connect(strict, "127.0.0.2", PARTIAL) for _ in range(10)]
    dripping = [_connect(strict, "127.0.0.2", PARTIAL) for _ in range(10)]
    body = b"POST /api/v1/sessions HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n{"
    slow_bodies = [_connect(strict, "127.0.0.2", body) for _ in range(10)]
    everyone = idle + slow_headers + slow_bodies
    try:
        assert _healthy(strict)
        assert len(_await_closed(everyone, len(everyone))) == len(everyone)
        assert len(_await_closed(dripping, len(dripping), drip=True)) == len(dripping)
    finally:
        for sock in everyone + dripping:
            sock.close()
    assert _answered_eventually(strict.url, source="127.0.0.2")  # its slots are free again
