"""A reverse proxy that forwards every request but cuts long responses, as some
corporate proxies do to Server-Sent Events: it passes a push stream's response
headers on and then closes the connection, before any event reaches the client."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

_CUT_PATH = b"/events "  # a push stream's request line ends with this path


@contextmanager
def cutting_proxy(upstream_port: int) -> Iterator[str]:
    """Yields the proxy's base URL; every connection goes to ``127.0.0.1:upstream_port``."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(client, upstream_port), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        listener.close()


def _serve(client: socket.socket, upstream_port: int) -> None:
    with client, socket.create_connection(("127.0.0.1", upstream_port)) as upstream:
        first = client.recv(65536)
        if not first:
            return
        cut = _CUT_PATH in first.split(b"\r\n", 1)[0]
        upstream.sendall(first)
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        if cut:
            _pass_headers_then_close(upstream, client)
        else:
            _pipe(upstream, client)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for side in (source, target):
            with suppress(OSError):
                side.shutdown(socket.SHUT_RDWR)


def _pass_headers_then_close(upstream: socket.socket, client: socket.socket) -> None:
    received = b""
    try:
        while b"\r\n\r\n" not in received and (data := upstream.recv(65536)):
            received += data
        head = received.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n"
        client.sendall(head)
    except OSError:
        pass
    for side in (client, upstream):
        with suppress(OSError):
            side.shutdown(socket.SHUT_RDWR)
