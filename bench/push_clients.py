"""The push benchmark's devices: many lightweight SDK clients in one process.

``python -m bench.push_clients URL SLUG TICKET COUNT`` activates COUNT devices on the
ticket, opens a push stream for each (aiohttp, one event loop: what an SDK does per
device, without an SDK's threads per device), and then, as the SDK's auto-update does,
answers every ``changed`` event with a conditional sync. Its protocol on stdout, one
JSON line each:

1. ``{"ready": …}`` once every stream is open, with the plain sync round trips
   measured meanwhile (the reference figure, the same conditional sync the devices
   send, while all streams are connected);
2. after a line on stdin (the vendor's changes are done), ``{"updates": …}``: for
   each device (its key id), when (``time.monotonic()``, one clock for every
   process on Linux) each sync that brought a new state was answered.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections import defaultdict
from typing import Any

import aiohttp

from bench.devices import _Device, _new_device

_JOSE = {"Content-Type": "application/jose"}
REFERENCE_SYNCS = 200
ACTIVATION_CONCURRENCY = 16


class Fleet:
    def __init__(self, url: str, slug: str, count: int) -> None:
        self.base = f"{url}/api/v1/vendors/{slug}/devices/"
        self.slug = slug
        self.devices = [_new_device() for _ in range(count)]
        self.ready = 0
        self.all_ready = asyncio.Event()
        self.updates: defaultdict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.session: aiohttp.ClientSession | None = None

    async def activate_all(self, ticket: str) -> None:
        queue = list(self.devices)

        async def worker() -> None:
            while queue:
                device = queue.pop()
                body = device.request(self.slug, "activate", ticket)
                async with self._http().post(self.base + "activate", data=body) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise RuntimeError(f"activation: HTTP {answer.status}")
                    self._adopt(device, answer.headers)

        await asyncio.gather(*(worker() for _ in range(ACTIVATION_CONCURRENCY)))

    async def listen(self, device: _Device) -> None:
        body = device.request(self.slug, "listen")
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        try:
            async with self._http().post(
                self.base + "events", data=body, timeout=timeout
            ) as answer:
                if answer.status != 200:
                    self.errors.append(f"stream: HTTP {answer.status} {await answer.text()}")
                    return
                event = ""
                async for raw in answer.content:
                    line = raw.decode().rstrip("\r\n")
                    if line.startswith("event:"):
                        event = line.partition(":")[2].strip()
                    elif not line and event:
                        await self._on(device, event)
                        event = ""
        except (aiohttp.ClientError, asyncio.CancelledError) as error:
            if not isinstance(error, asyncio.CancelledError):
                self.errors.append(f"stream: {error!r}")

    async def _on(self, device: _Device, event: str) -> None:
        if event == "ready":
            self.ready += 1
            if self.ready == len(self.devices):
                self.all_ready.set()
        elif event == "changed":
            asyncio.get_running_loop().create_task(self._sync(device))

    async def _sync(self, device: _Device) -> bool:
        """A conditional sync as the SDK sends it; True if it brought a new state."""
        headers = {"If-None-Match": f'"{device.state}"'}
        body = device.request(self.slug, "sync")
        async with self._http().post(self.base + "sync", data=body, headers=headers) as answer:
            await answer.read()
            if answer.status == 200:
                self._adopt(device, answer.headers)
                self.updates[device.id].append(time.monotonic())
                return True
            if answer.status != 304:
                self.errors.append(f"sync: HTTP {answer.status}")
            return False

    async def reference_syncs(self) -> list[float]:
        """Round trips of plain (unchanged) conditional syncs, one after another."""
        times = []
        for n in range(REFERENCE_SYNCS):
            device = self.devices[n % len(self.devices)]
            headers = {"If-None-Match": f'"{device.state}"'}
            body = device.request(self.slug, "sync")
            sent = time.perf_counter()
            async with self._http().post(self.base + "sync", data=body, headers=headers) as answer:
                await answer.read()
            times.append(time.perf_counter() - sent)
        return times

    def _adopt(self, device: _Device, headers: Any) -> None:
        device.seq = int(headers["X-Licentia-Seq"])
        device.state = headers["ETag"].strip('"')

    def _http(self) -> aiohttp.ClientSession:
        if self.session is None:
            connector = aiohttp.TCPConnector(limit=0)
            self.session = aiohttp.ClientSession(connector=connector, headers=_JOSE)
        return self.session


async def main(url: str, slug: str, ticket: str, count: int) -> None:
    fleet = Fleet(url, slug, count)
    await fleet.activate_all(ticket)
    streams = [asyncio.create_task(fleet.listen(d)) for d in fleet.devices]
    await asyncio.wait_for(fleet.all_ready.wait(), timeout=300)
    reference = await fleet.reference_syncs()
    ids = [d.id for d in fleet.devices]
    _say({"ready": {"devices": ids, "reference_sync_s": reference, "errors": fleet.errors}})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for stream in streams:
        stream.cancel()
    await asyncio.gather(*streams, return_exceptions=True)
    _say({"updates": dict(fleet.updates), "errors": fleet.errors[:20]})
    if fleet.session is not None:
        await fleet.session.close()


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _more_descriptors() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))


if __name__ == "__main__":
    _more_descriptors()
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
