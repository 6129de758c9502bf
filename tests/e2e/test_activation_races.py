"""No license is ever bound beyond what a ticket holds: many devices racing to activate
one ticket against real server processes (one on SQLite, two sharing one PostgreSQL),
and each device's own requests racing each other, checked against what the vendor
sees afterwards.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from licentia.formats.device import unverified_claims
from tests.e2e.harness.cluster import Environment, environment, migrate, serve
from tests.integration.device_messages import BareDevice

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("activation-races")]

LIMITS = {"A": 6, "B": 4}  # licenses of each template on the ticket
DEVICES = 30  # more than the ticket can serve
JOSE = {"Content-Type": "application/jose"}


@dataclass
class Shop:
    """A vendor with one ticket of two device templates, served by ``urls``."""

    urls: list[str]
    slug: str
    api_key: str
    ticket_code: str
    templates: dict[str, str]  # template id -> its name in LIMITS

    def admin(self, path: str) -> Any:
        answer = httpx.get(
            f"{self.urls[0]}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture
def shop(backend: str, database_url: str, tmp_path: Path) -> Iterator[Shop]:
    env = environment(database_url, tmp_path)
    migrate(env)
    with serve(env, 1 if backend == "sqlite" else 2) as servers:
        yield _open_shop(env, [server.url for server in servers])


def _open_shop(env: Environment, urls: list[str]) -> Shop:
    slug = f"act-{secrets.token_hex(4)}"
    env.cli("admin", "vendor", "create", slug, "--name", slug)
    api_key = str(env.cli("admin", "api-key", "create", "--vendor", slug, "--name", "erp")["key"])
    with httpx.Client(
        base_url=f"{urls[0]}/api/v1", headers={"Authorization": f"Bearer {api_key}"}, timeout=60
    ) as erp:
        product = erp.post("/products", json={"code": "APP", "name": "App"}).json()
        templates = {}
        for name in LIMITS:
            body = {"sku": f"APP-{name}", "name": name, "product_id": product["id"]}
            made = erp.post("/templates", json=body | {"options": {"delivery": "device"}})
            assert made.status_code == 201, made.text
            templates[made.json()["id"]] = name
        lines = [{"sku": f"APP-{name}", "quantity": count} for name, count in LIMITS.items()]
        order = erp.post("/orders", json={"external_order_id": "RACE", "lines": lines})
        assert order.status_code == 201, order.text
    return Shop(urls, slug, api_key, order.json()["ticket_code"], templates)


def _race(shop: Shop, requests: list[str]) -> list[httpx.Response]:
    """Send every request at once (one thread each, released together), spread over
    the servers; the answers in the order of ``requests``."""
    answers: list[httpx.Response | None] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def send(number: int) -> None:
        token = requests[number]
        url = shop.urls[number % len(shop.urls)]
        with httpx.Client(timeout=120) as client:
            start.wait()
            answers[number] = client.post(
                f"{url}/api/v1/vendors/{shop.slug}/devices/activate", content=token, headers=JOSE
            )

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def _licenses(answer: httpx.Response) -> set[str]:
    return {unverified_claims(doc)["sub"] for doc in unverified_claims(answer.text)["licenses"]}


def test_racing_devices_never_get_more_licenses_than_the_ticket_holds(shop: Shop) -> None:
    racers = [BareDevice(shop.slug) for _ in range(DEVICES)]
    answers = _race(shop, [device.request("activate", shop.ticket_code) for device in racers])
    refused = [answer for answer in answers if answer.status_code != 200]
    assert {(a.status_code, a.json()["code"]) for a in refused} <= {(409, "NO_LICENSE_AVAILABLE")}
    handed = {
        device.id: _licenses(answer)
        for device, answer in zip(racers, answers, strict=True)
        if answer.status_code == 200
    }
    every = [license_id for held in handed.values() for license_id in held]
    assert len(every) == len(set(every)) == sum(LIMITS.values())  # each once, none left
    # What the vendor sees is what the devices were told, one license per template each.
    listed = {item["key_id"]: set(item["license_ids"]) for item in shop.admin("/devices")["items"]}
    assert listed == handed
    for held in handed.values():
        names = Counter(shop.templates[shop.admin(f"/licenses/{i}")["template_id"]] for i in held)
        assert max(names.values()) == 1
    # A device that won, activating again from two requests at once, takes nothing more.
    winners = [device for device in racers if device.id in handed][:5]
    again = _race(
        shop,
        [device.request("activate", shop.ticket_code) for device in winners for _ in (1, 2)],
    )
    for number, answer in enumerate(again):
        assert answer.status_code == 200, answer.text
        assert _licenses(answer) == handed[winners[number // 2].id]
    assert {
        item["key_id"]: set(item["license_ids"]) for item in shop.admin("/devices")["items"]
    } == handed


def test_one_new_device_activating_from_several_requests_at_once_is_registered_once(
    shop: Shop,
) -> None:
    device = BareDevice(shop.slug)
    answers = _race(shop, [device.request("activate", shop.ticket_code) for _ in range(4)])
    assert [answer.status_code for answer in answers] == [200] * 4, [a.text for a in answers]
    assert sorted(int(answer.headers["X-Licentia-Seq"]) for answer in answers) == [1, 2, 3, 4]
    held = {frozenset(_licenses(answer)) for answer in answers}
    assert len(held) == 1 and len(next(iter(held))) == len(LIMITS)
    (listed,) = shop.admin("/devices")["items"]
    assert listed["key_id"] == device.id and set(listed["license_ids"]) == next(iter(held))
