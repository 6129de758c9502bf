"""Writers that keep going while the server is killed, and what they must find after.

Each writer sends one kind of creating request again and again, and retries each one
(with the same ``Idempotency-Key``, or the same device and ticket) until it is
answered, however often the server dies meanwhile, so that every write ends either
acknowledged or, once the run stops, known to be unanswered. What was acknowledged is
kept, with the answer, for the checks: every acknowledged write is there after the
restarts, nothing is applied twice, and asking again gives the same answer.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from licentia.formats.device import unverified_claims
from tests.integration.device_messages import BareDevice

JOSE = {"Content-Type": "application/jose"}
GRACE = 120.0  # how long a write begun before the stop may still be retried
REACTIVATED = 10  # devices that activate again after the run


@dataclass
class Shop:
    """The vendor the writers write to."""

    url: str
    slug: str
    api_key: str
    skus: list[str]  # device templates to order
    ticket_code: str  # a ticket the devices activate
    ticket_id: str

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )


@dataclass
class Ledger:
    """What the writers were told, shared by their threads."""

    orders: dict[str, tuple[dict[str, Any], int, dict[str, Any]]] = field(default_factory=dict)
    # device id -> the device and the license ids it was told
    devices: dict[str, tuple[BareDevice, set[str]]] = field(default_factory=dict)
    unanswered: int = 0
    problems: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def order(self, key: str, body: dict[str, Any], answer: httpx.Response) -> None:
        with self._lock:
            self.orders[key] = (body, answer.status_code, answer.json())

    def device(self, device: BareDevice, held: set[str]) -> None:
        with self._lock:
            self.devices[device.id] = (device, held)

    def problem(self, message: str) -> None:
        with self._lock:
            self.problems.append(message)

    def lost(self) -> None:
        with self._lock:
            self.unanswered += 1


def until_answered(send: Callable[[], httpx.Response], stop: threading.Event) -> Any:
    """``send()`` again until the server answers other than 5xx; None if the run
    stopped more than GRACE seconds before that."""
    give_up = None
    while True:
        if stop.is_set() and give_up is None:
            give_up = time.monotonic() + GRACE
        if give_up is not None and time.monotonic() > give_up:
            return None
        try:
            answer = send()
        except httpx.TransportError:
            time.sleep(0.02)
            continue
        if answer.status_code < 500:
            return answer
        time.sleep(0.02)


def write_orders(shop: Shop, name: str, ledger: Ledger, stop: threading.Event) -> None:
    """Orders of one or two lines, each with its own key; some sent again at once."""
    rng = random.Random(name)
    with shop.client() as erp:
        number = 0
        while not stop.is_set():
            number += 1
            key = f"{name}-{number}"
            lines = [
                {"sku": sku, "quantity": rng.randint(1, 2)}
                for sku in rng.sample(shop.skus, rng.randint(1, len(shop.skus)))
            ]
            body = {"external_order_id": f"O-{key}", "lines": lines}
            send = partial(erp.post, "/orders", json=body, headers={"Idempotency-Key": key})
            answer = until_answered(send, stop)
            if answer is None:
                ledger.lost()
                return
            if answer.status_code != 201:
                ledger.problem(f"order {key}: {answer.text}")
                return
            ledger.order(key, body, answer)


def activate_devices(shop: Shop, name: str, ledger: Ledger, stop: threading.Event) -> None:
    """New devices activating the ticket, until it has no license left."""
    with httpx.Client(base_url=f"{shop.url}/api/v1", timeout=30) as client:
        while not stop.is_set():
            device = BareDevice(shop.slug)
            answer = until_answered(partial(_activate, client, shop, device), stop)
            if answer is None:
                ledger.lost()
                return
            if answer.status_code == 409 and answer.json()["code"] == "NO_LICENSE_AVAILABLE":
                return
            if answer.status_code != 200:
                ledger.problem(f"activation: {answer.text}")
                return
            ledger.device(device, licenses_of(answer))


def _activate(client: httpx.Client, shop: Shop, device: BareDevice) -> httpx.Response:
    """A new request each time: a retry is the same device activating the same ticket."""
    return client.post(
        f"/vendors/{shop.slug}/devices/activate",
        content=device.request("activate", shop.ticket_code),
        headers=JOSE,
    )


def licenses_of(answer: httpx.Response) -> set[str]:
    return {unverified_claims(doc)["sub"] for doc in unverified_claims(answer.text)["licenses"]}


def check_orders(shop: Shop, ledger: Ledger) -> list[str]:
    """Every acknowledged order is there once, with its licenses once, and its key
    replays the very answer it got."""
    problems = []
    with shop.client() as erp:
        for key, (body, status, first) in ledger.orders.items():
            again = erp.post("/orders", json=body, headers={"Idempotency-Key": key})
            if (again.status_code, again.json()) != (status, first):
                problems.append(f"order {key} replayed as {again.status_code} {again.text}")
            found = erp.get("/orders", params={"external_order_id": body["external_order_id"]})
            if [order["id"] for order in found.json()["items"]] != [first["id"]]:
                problems.append(f"order {key} is listed as {found.text}")
            ticket = erp.get(f"/tickets/{first['ticket_id']}").json()
            quantity = sum(line["quantity"] for line in body["lines"])
            if (
                len(set(ticket["license_ids"])) != len(ticket["license_ids"])
                or len(ticket["license_ids"]) != quantity
            ):
                problems.append(f"order {key} of {quantity} has licenses {ticket['license_ids']}")
    return problems


def check_activations(shop: Shop, ledger: Ledger, every_device: list[dict[str, Any]]) -> list[str]:
    """Every acknowledged activation is there with the licenses it was told, no license
    is on two devices, and activating again gives the same licenses."""
    problems = []
    listed = {device["key_id"]: set(device["license_ids"]) for device in every_device}
    for device_id, (_, held) in ledger.devices.items():
        if listed.get(device_id) != held:
            problems.append(f"device {device_id} told {held}, listed {listed.get(device_id)}")
    bound = [license_id for held in listed.values() for license_id in held]
    if len(bound) != len(set(bound)):
        problems.append("a license is bound to two devices")
    with shop.client() as erp:
        ticket = erp.get(f"/tickets/{shop.ticket_id}").json()
    if not set(bound) <= set(ticket["license_ids"]):
        problems.append("a device holds a license of no ticket it activated")
    with httpx.Client(base_url=f"{shop.url}/api/v1", timeout=30) as client:
        for device, held in list(ledger.devices.values())[:REACTIVATED]:
            again = _activate(client, shop, device)
            if again.status_code != 200 or licenses_of(again) != held:
                problems.append(f"device {device.id} activating again got {again.text[:200]}")
    return problems
