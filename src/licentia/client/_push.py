"""Listening for License Central's push stream: "your container changed".

Imported only when an auto-update starts with push on: an application that checks
licenses offline never loads it. The stream is Server-Sent Events over a POST (the
device's signed ``listen`` request is the body, so no credential sits in a URL that
a proxy logs), read with httpx alone:

- ``ready`` arrives once the server listens for this device: the listener reports a
  change then too, so that one sync catches whatever changed before it listened;
- ``changed``: the container changed;
- comments keep the connection alive; a stream that stays silent longer than
  ``read_timeout`` is taken for dead (a proxy that holds it without passing it on).

A stream that fails to open, ends before ``ready`` or breaks is opened again after a
growing pause with jitter; a server without push (404, 405, 501) is asked again only
after the longest pause. While no stream is open, :attr:`PushListener.connected` is
False and the auto-update polls instead.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from licentia import __version__
from licentia.client._exceptions import LicentiaClientError, NetworkError, error_from_problem

if TYPE_CHECKING:
    import httpx

__all__ = ["PushListener", "ServerEvent", "StreamEndpoint", "read_events"]

FIRST_PAUSE = 1.0
READ_TIMEOUT = 60.0  # four keep-alives missed (the server's default is one per 15 s)
HEALTHY_SECONDS = 10.0  # a stream that served this long was not cut by a proxy
NO_PUSH_STATUSES = frozenset({404, 405, 501})


@dataclass(frozen=True)
class ServerEvent:
    """One event of the stream: its type (``message`` when unnamed) and its data."""

    name: str
    data: str


def read_events(lines: Iterator[str]) -> Iterator[ServerEvent]:
    """The events of a ``text/event-stream`` given line by line (comments, ``id`` and
    ``retry`` are skipped; the pause between streams is the listener's own)."""
    name, data = "", list[str]()
    for line in lines:
        if not line:
            if data or name:
                yield ServerEvent(name or "message", "\n".join(data))
            name, data = "", list[str]()
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)


class StreamEndpoint:
    """Opens the push stream at ``url`` with a fresh body from ``body`` each time, on
    an HTTP client of its own (a stream must not hold the connection a sync needs)."""

    def __init__(
        self,
        url: str,
        body: Callable[[], tuple[str, dict[str, str]]],
        *,
        transport: httpx.BaseTransport | None,
        timeout: float,
        read_timeout: float,
    ) -> None:
        self._url = url
        self._body = body
        self._transport = transport
        self._timeout = timeout
        self._read_timeout = read_timeout
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def events(self) -> Iterator[ServerEvent]:
        """The stream's events until it ends. Raises NetworkError for a failed or
        broken connection and the typed error of a problem answer."""
        import httpx

        content, headers = self._body()
        try:
            with self._client().stream(
                "POST", self._url, content=content.encode(), headers=headers
            ) as response:
                if response.status_code != 200:
                    response.read()
                    raise error_from_problem(response.status_code, _problem(response))
                yield from read_events(response.iter_lines())
        except httpx.HTTPError as error:
            raise NetworkError(
                f"The push stream broke ({type(error).__name__}: {error}); polling meanwhile."
            ) from error

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _client(self) -> httpx.Client:
        import httpx

        with self._lock:
            if self._http is None:
                self._http = httpx.Client(
                    transport=self._transport,
                    timeout=httpx.Timeout(self._timeout, read=self._read_timeout),
                    headers={
                        "User-Agent": f"licentia-client/{__version__}",
                        "Accept": "text/event-stream",
                    },
                )
            return self._http


class PushListener:
    """Calls ``on_change`` on every ``ready`` and ``changed`` of the stream, in a
    daemon thread, reconnecting with backoff; ``connected`` while a stream is open."""

    def __init__(
        self,
        endpoint: StreamEndpoint,
        on_change: Callable[[], None],
        *,
        max_pause: float,
        rng: random.Random | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._on_change = on_change
        self._max_pause = max_pause
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.failures = 0
        self.changes = 0  # ready and changed events received (tests read it)
        self.last_error: LicentiaClientError | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="licentia-push", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 2.0) -> None:
        """Stop listening: closing the client ends a read in progress."""
        self._stop.set()
        self._endpoint.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            pause = self._listen_once()
            if self._stop.wait(pause):
                return

    def _listen_once(self) -> float:
        """One stream, from opening to its end; returns the pause before the next."""
        started, ready = time.monotonic(), False
        try:
            for event in self._endpoint.events():
                if self._stop.is_set():
                    return 0.0
                if event.name in ("ready", "changed"):
                    self.changes += 1
                    self._on_change()
                if event.name == "ready":  # after its change is reported
                    ready, self.connected, self.last_error = True, True, None
        except Exception as error:
            if ready and time.monotonic() - started >= HEALTHY_SECONDS:
                self.failures = 0  # it served a while: a fresh failure, a short pause
            return self._failed(_client_error(error))
        finally:
            self.connected = False
        if not ready or time.monotonic() - started < HEALTHY_SECONDS:
            # Cut before it was ready, or soon after: a proxy that ends long responses.
            return self._failed(NetworkError("The push stream was cut; polling meanwhile."))
        self.failures = 0  # the server ended it at its time limit: open the next one
        return self._rng.uniform(0, FIRST_PAUSE)

    def _failed(self, error: LicentiaClientError) -> float:
        self.failures += 1
        self.last_error = error
        if error.status in NO_PUSH_STATUSES and error.server_code != "DEVICE_NOT_FOUND":
            return self._max_pause  # no push on this server: poll, and look again later
        ceiling = min(self._max_pause, FIRST_PAUSE * 2 ** (self.failures - 1))
        return self._rng.uniform(ceiling / 2, ceiling)


def _client_error(error: Exception) -> LicentiaClientError:
    if isinstance(error, LicentiaClientError):
        return error
    return LicentiaClientError("PUSH_FAILED", f"The push stream failed: {error!r}.")


def _problem(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
