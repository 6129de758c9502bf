"""Device licenses: the SDK's hot path and cold start, the server's activations and syncs.

- ``require()`` on an activated device, time per call (goal ≤ 5 µs);
- cold start (open the store, verify every document) for 1 and 100 licenses, next to
  raw Ed25519 verifications of the same documents in the same run (goal ratio ≤ 2);
- online activations/s and unchanged (304) syncs/s against one server (goals ≥ 100 and
  ≥ 500 on PostgreSQL). Device requests are signed before the clock starts and sent
  with aiohttp, which costs far less CPU per request than httpx: the figure is the
  server's, not the signing client's.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from bench.load import LoadResult
from bench.server import BenchSetupError, Server
from licentia.client import LicenseClient, Virtualization
from licentia.formats.device import device_id, okp_jwk
from licentia.formats.document_types import REQUEST_TYP
from licentia.formats.jws import sign_document

REQUIRE_GOAL_US = 5.0
COLD_GOAL_RATIO = 2.0
ACTIVATIONS_GOAL, SYNCS_GOAL = 100.0, 500.0
# Five tickets of 1000 licenses (an order's most): more than a bounded run can take.
ACTIVATION_TICKETS, TICKET_LICENSES = 5, 1000
SYNC_DEVICES = 500  # devices that sync (about as many as were activated before 2026-12-03)
FACTORS = {"machine_id": "bench-machine", "product_uuid": "bench-uuid", "mac_addresses": "aa:bb"}


class _Factors:
    def __call__(self) -> dict[str, str]:
        return dict(FACTORS)


class _NotVirtual:
    def __call__(self) -> Virtualization:
        return Virtualization(vm=None, container=None)


@dataclass(frozen=True)
class DeviceFigures:
    require_us: float
    cold: dict[int, tuple[float, float]]  # licenses -> (cold start s, raw verifies s)
    activations: LoadResult
    syncs: LoadResult


# --- setup through the API ---------------------------------------------------------------


def _ticket(http: httpx.Client, lines: list[tuple[str, int]]) -> str:
    body = {
        "external_order_id": f"bench-{secrets.token_hex(6)}",
        "lines": [
            {"sku": sku, "quantity": quantity, "line_id": str(number)}
            for number, (sku, quantity) in enumerate(lines, 1)
        ],
    }
    answer = http.post("/api/v1/orders", json=body)
    if answer.status_code not in (200, 201):
        raise BenchSetupError(f"order failed: {answer.text}")
    return str(answer.json()["ticket_code"])


def _templates(http: httpx.Client, count: int) -> tuple[str, list[str], list[str]]:
    product = http.post(
        "/api/v1/products",
        json={
            "code": f"DEV-{secrets.token_hex(3)}",
            "name": "Bench device product",
            "features": [{"code": "edit"}, {"code": "export"}],
        },
    )
    if product.status_code != 201:
        raise BenchSetupError(f"product failed: {product.text}")
    skus = []
    for _ in range(count):
        sku = f"DEV-{secrets.token_hex(4)}"
        made = http.post(
            "/api/v1/templates",
            json={
                "sku": sku,
                "name": sku,
                "product_id": product.json()["id"],
                "features": ["edit", "export"],
                "options": {"delivery": "device", "lease_days": 30, "refresh_days": 7},
            },
        )
        if made.status_code != 201:
            raise BenchSetupError(f"template failed: {made.text}")
        skus.append(sku)
    return product.json()["code"], skus, ["edit", "export"]


# --- the SDK -----------------------------------------------------------------------------


def _client(server: Server, slug: str, store: Path) -> LicenseClient:
    jwks = httpx.get(f"{server.url}/api/v1/vendors/{slug}/jwks.json").json()
    return LicenseClient(
        server.url,
        slug,
        jwks,
        store_dir=store,
        factor_source=_Factors(),
        virtualization_probe=_NotVirtual(),
    )


def measure_require(client: LicenseClient, product: str, *, calls: int = 200_000) -> float:
    """Microseconds per ``require()`` (best of three batches)."""
    client.require(product, "edit")
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            client.require(product, "edit")
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def measure_cold(server: Server, slug: str, store: Path) -> tuple[float, float]:
    """Seconds to open a client and verify its documents, and seconds for raw Ed25519
    verifications of the same documents: the best of alternating rounds, 400 for one
    document and 30 for more. (On a shared machine a fraction of a millisecond measured
    only 30 times is often interrupted every time: one license measured x2.2 to x2.6 as
    the best of 30 and x1.8 to x1.9 as the best of 400, in the same minute.)"""
    jwks = httpx.get(f"{server.url}/api/v1/vendors/{slug}/jwks.json").json()
    keys = {k["kid"]: Ed25519PublicKey.from_public_bytes(_unb64(k["x"])) for k in jwks["keys"]}
    documents = _stored_documents(store)
    cold = raw = float("inf")
    for _ in range(400 if len(documents) == 1 else 30):
        start = time.perf_counter()
        client = LicenseClient(
            None,
            slug,
            jwks,
            store_dir=store,
            factor_source=_Factors(),
            virtualization_probe=_NotVirtual(),
        )
        client.licenses()
        cold = min(cold, time.perf_counter() - start)
        client.close()
        start = time.perf_counter()
        for token in documents:
            _raw_verify(token, keys)
        raw = min(raw, time.perf_counter() - start)
    return cold, raw


def _stored_documents(store: Path) -> list[str]:
    state = json.loads((store / "state.json").read_text())
    found: list[str] = []
    _collect_tokens(state, found)
    return found


def _collect_tokens(value: Any, found: list[str]) -> None:
    if isinstance(value, str) and value.count(".") == 2 and value.startswith("eyJ"):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _collect_tokens(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_tokens(item, found)


def _raw_verify(token: str, keys: dict[str, Ed25519PublicKey]) -> None:
    head, payload, signature = token.split(".")
    kid = json.loads(_unb64(head))["kid"]
    try:
        keys[kid].verify(_unb64(signature), f"{head}.{payload}".encode())
    except InvalidSignature as error:
        raise BenchSetupError("a stored document does not verify") from error


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the server ----------------------------------------------------------------------------


@dataclass
class _Device:
    key: Ed25519PrivateKey
    enc: X25519PrivateKey
    seq: int = 0
    state: str | None = None

    @property
    def id(self) -> str:
        return device_id(self.key.public_key())

    def request(self, slug: str, op: str, ticket: str | None = None) -> str:
        claims = {
            "iss": self.id,
            "aud": slug,
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(9),
            "op": op,
            "ticket": ticket,
            "device_key": okp_jwk(self.key.public_key()),
            "enc_key": okp_jwk(self.enc.public_key()),
            "fingerprint": {"m": "0" * 64, "d": "1" * 64},
            "vm": False,
            "seq": self.seq,
            "state": self.state,
        }
        return sign_document(claims, self.key, kid=self.id, typ=REQUEST_TYP)


def _new_device() -> _Device:
    return _Device(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())


async def measure_activations(
    server: Server,
    slug: str,
    tickets: list[str],
    devices: list[_Device],
    *,
    concurrency: int,
    seconds: float,
) -> LoadResult:
    """Activate each device once (until all are done or ``seconds`` pass), the first
    ones on the first ticket, and so on."""
    tokens = [
        d.request(slug, "activate", tickets[n * len(tickets) // len(devices)])
        for n, d in enumerate(devices)
    ]
    path = f"/api/v1/vendors/{slug}/devices/activate"

    def activated(number: int, headers: Mapping[str, str]) -> None:
        devices[number].seq = int(headers["X-Licentia-Seq"])
        devices[number].state = headers["ETag"].strip('"')

    return await _post_all(
        server.url + path,
        iter(enumerate(tokens)),
        headers=_JOSE,
        expect=200,
        concurrency=concurrency,
        seconds=seconds,
        on_answer=activated,
    )


async def measure_syncs(
    server: Server, slug: str, devices: list[_Device], *, concurrency: int, seconds: float
) -> LoadResult:
    # A device's first conditional sync confirms its update (a write); later ones are
    # answered from one read. A fixed number of devices keeps that mix independent
    # of how many devices the activation phase got through.
    active = [d for d in devices if d.seq > 0][:SYNC_DEVICES]
    if not active:
        raise BenchSetupError("no device was activated, so none can sync")
    tokens = [d.request(slug, "sync") for d in active]
    numbered = ((n, tokens[n % len(tokens)]) for n in itertools.count())
    return await _post_all(
        f"{server.url}/api/v1/vendors/{slug}/devices/sync",
        numbered,
        headers={**_JOSE, "If-None-Match": "*"},
        expect=304,
        concurrency=concurrency,
        seconds=seconds,
    )


_JOSE = {"Content-Type": "application/jose"}


async def _post_all(
    url: str,
    bodies: Iterator[tuple[int, str]],
    *,
    headers: Mapping[str, str],
    expect: int,
    concurrency: int,
    seconds: float,
    on_answer: Callable[[int, Mapping[str, str]], None] | None = None,
) -> LoadResult:
    """POST the numbered ``bodies`` from ``concurrency`` keep-alive connections until
    they run out or ``seconds`` pass. aiohttp rather than httpx: on a 2-core machine
    the load generator shares the cores with the server, and httpx spent 1-2 ms of CPU
    per request, as much as the server's own work on an unchanged sync."""
    result = LoadResult()
    start = time.perf_counter()
    deadline = start + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            for number, body in bodies:
                if time.perf_counter() > deadline:
                    return
                sent = time.perf_counter()
                async with session.post(url, data=body) as answer:
                    text = await answer.text()
                    if answer.status != expect:
                        result.errors += 1
                        result.first_error = result.first_error or (
                            f"HTTP {answer.status}: {text[:200]}"
                        )
                        continue
                    result.latencies.append(time.perf_counter() - sent)
                    if on_answer is not None:
                        on_answer(number, answer.headers)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - start
    return result


def measure_devices(
    server: Server, slug: str, api_key: str, *, seconds: float, concurrency: int = 16
) -> DeviceFigures:
    """All device figures against ``server`` (its vendor ``slug``, an all-scopes key)."""
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    )
    product, skus, _ = _templates(http, 100)
    cold: dict[int, tuple[float, float]] = {}
    require_us = 0.0
    with tempfile.TemporaryDirectory(prefix="licentia-bench-store-") as tmp:
        for count in (1, 100):
            store = Path(tmp) / f"store-{count}"
            client = _client(server, slug, store)
            client.activate(_ticket(http, [(sku, 1) for sku in skus[:count]]))
            if count == 1:
                require_us = measure_require(client, product)
            client.close()
            cold[count] = measure_cold(server, slug, store)
    activations, syncs = _traffic(server, slug, http, skus[0], seconds, concurrency)
    return DeviceFigures(require_us, cold, activations, syncs)


def measure_device_traffic(
    server: Server, slug: str, api_key: str, *, seconds: float, concurrency: int = 16
) -> tuple[LoadResult, LoadResult]:
    """Only the server's figures (activations/s, unchanged syncs/s), e.g. against a
    server with several worker processes; the client figures do not depend on it."""
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    )
    _, skus, _ = _templates(http, 1)
    return _traffic(server, slug, http, skus[0], seconds, concurrency)


def measure_activation_rate(
    server: Server, slug: str, api_key: str, *, seconds: float, concurrency: int = 16
) -> LoadResult:
    """Online activations/s alone (bench.activations puts it next to its reference)."""
    http = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    )
    _, skus, _ = _templates(http, 1)
    return _activations(server, slug, http, skus[0], seconds, concurrency)[0]


def _traffic(
    server: Server, slug: str, http: httpx.Client, sku: str, seconds: float, concurrency: int
) -> tuple[LoadResult, LoadResult]:
    activations, devices = _activations(server, slug, http, sku, seconds, concurrency)
    syncs = asyncio.run(
        measure_syncs(server, slug, devices, concurrency=concurrency, seconds=seconds)
    )
    return activations, syncs


def _activations(
    server: Server, slug: str, http: httpx.Client, sku: str, seconds: float, concurrency: int
) -> tuple[LoadResult, list[_Device]]:
    """Fresh devices activating on tickets of 5,000 licenses in all (more than a
    bounded run can take): the rate, and the devices (those activated know their state)."""
    tickets = [_ticket(http, [(sku, TICKET_LICENSES)]) for _ in range(ACTIVATION_TICKETS)]
    devices = [_new_device() for _ in range(TICKET_LICENSES * ACTIVATION_TICKETS)]
    activations = asyncio.run(
        measure_activations(
            server, slug, tickets, devices, concurrency=concurrency, seconds=seconds
        )
    )
    return activations, devices


def traffic_rows(activations: LoadResult, syncs: LoadResult, backend: str) -> list[dict[str, Any]]:
    """The activation and sync rows alone (``backend`` names the server set-up)."""
    return [
        {
            "figure": f"online activations/s ({backend})",
            "value": _rate(activations),
            "goal": f"≥ {ACTIVATIONS_GOAL:.0f}/s on PostgreSQL",
            "met": activations.rate >= ACTIVATIONS_GOAL,
        },
        {
            "figure": f"unchanged syncs/s ({backend})",
            "value": _rate(syncs),
            "goal": f"≥ {SYNCS_GOAL:.0f}/s on PostgreSQL",
            "met": syncs.rate >= SYNCS_GOAL,
        },
    ]


def rows(figures: DeviceFigures, backend: str) -> list[dict[str, Any]]:
    cold1, raw1 = figures.cold[1]
    cold100, raw100 = figures.cold[100]
    client_rows = [
        {
            "figure": "require() per call",
            "value": f"{figures.require_us:.2f} µs",
            "goal": f"≤ {REQUIRE_GOAL_US} µs",
            "met": figures.require_us <= REQUIRE_GOAL_US,
        },
        {
            "figure": "cold start, 1 license",
            "value": f"{cold1 * 1e3:.2f} ms vs raw {raw1 * 1e3:.3f} ms (x{cold1 / raw1:.1f})",
            "goal": f"ratio ≤ {COLD_GOAL_RATIO}",
            "met": cold1 / raw1 <= COLD_GOAL_RATIO,
        },
        {
            "figure": "cold start, 100 licenses",
            "value": f"{cold100 * 1e3:.1f} ms vs raw "
            f"{raw100 * 1e3:.1f} ms (x{cold100 / raw100:.2f})",
            "goal": f"ratio ≤ {COLD_GOAL_RATIO}",
            "met": cold100 / raw100 <= COLD_GOAL_RATIO,
        },
    ]
    return [*client_rows, *traffic_rows(figures.activations, figures.syncs, backend)]


def _rate(load: LoadResult) -> str:
    return f"{load.rate:.0f}/s (p99 {load.percentile_ms(99):.0f} ms, errors {load.errors})"
