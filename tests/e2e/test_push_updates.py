"""Push updates: a vendor's change reaches an online device through its push stream.

A real ``licentia serve`` process (SQLite and PostgreSQL), the vendor's REST API,
and applications embedding the SDK with the auto-update on. The devices' leases are
renewed only every 30 days and polling is off (``poll_interval=None``): a change that
reaches a device within the test can only have come by push. A proxy that cuts the
streams leaves the SDK polling, and a device hears of its own container only.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from licentia.client import (
    CloudClient,
    LicenseClient,
    LicentiaClientError,
    NetworkError,
    NotActivatedError,
    Virtualization,
)
from tests.e2e.harness.cluster import Environment, Server, environment, migrate, serve
from tests.integration.device_messages import BareDevice
from tests.support.cutting_proxy import cutting_proxy

pytestmark = pytest.mark.slow

MACHINE = {"machine_id": "ws-push", "mac_addresses": "3c:52:82:1a:2b:3d", "disk": "S4EW-9"}
PATIENCE = 60.0  # seconds a test waits for what must happen (a busy machine is slow)
NO_POLLING: dict[str, Any] = {"poll_interval": None, "check_interval": timedelta(hours=1)}


@dataclass
class Vendor:
    env: Environment
    url: str
    slug: str
    api_key: str

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.url}/api/v1{path}",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
            **kwargs,
        )
        assert response.status_code < 300, response.text
        return response.json()

    def ticket(self) -> str:
        """A ticket of one time-limited device license renewed every 30 days."""
        product = self.api("POST", "/products", json={"code": "CAD", "name": "CAD"})
        template = self.api(
            "POST",
            "/templates",
            json={
                "sku": "CAD-1Y",
                "name": "CAD for a year",
                "product_id": product["id"],
                "options": {
                    "delivery": "device",
                    "validity": {"kind": "days_from_issue", "days": 365},
                    "lease_days": 60,
                    "refresh_days": 30,
                },
            },
        )
        order = self.api(
            "POST",
            "/orders",
            json={"external_order_id": secrets.token_hex(4), "lines": [{"sku": template["sku"]}]},
        )
        return str(order["ticket_code"])

    def act(self, license_id: str, action: str, **body: Any) -> dict[str, Any]:
        return dict(self.api("POST", f"/licenses/{license_id}/actions/{action}", json=body))


def _new_vendor(env: Environment, url: str) -> Vendor:
    slug = f"push-{secrets.token_hex(4)}"
    env.cli("admin", "vendor", "create", slug, "--name", "Push Tools")
    key = str(env.cli("admin", "api-key", "create", "--vendor", slug, "--name", "erp")["key"])
    return Vendor(env, url, slug, key)


@pytest.fixture
def running(
    backend: str, database_url: str, tmp_path: Path
) -> Iterator[tuple[Environment, Server]]:
    env = environment(database_url, tmp_path)
    migrate(env)
    with serve(env, 1) as (server,):
        yield env, server


def _application(vendor: Vendor, url: str, store: Path) -> LicenseClient:
    keys = httpx.get(f"{vendor.url}/api/v1/vendors/{vendor.slug}/jwks.json", timeout=30).json()
    return LicenseClient(
        url,
        vendor.slug,
        keys,
        store_dir=store,
        factor_source=lambda: dict(MACHINE),
        virtualization_probe=lambda: Virtualization(),
    )


def _eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _start_listening(application: LicenseClient) -> None:
    """Start the auto-update without polling, and wait until its stream is open and
    the sync that every new stream begins with is done: from then on only a push
    makes it sync."""
    activated = application.status().last_sync
    application.start_auto_update(jitter=timedelta(0), **NO_POLLING)
    assert _eventually(
        lambda: application.status().push_connected and application.status().last_sync != activated
    )


def _valid_until(client: LicenseClient) -> Any:
    (entitlement,) = client.licenses()
    return entitlement.valid_until


def test_an_extension_and_a_withdrawal_reach_an_online_device_by_push(
    running: tuple[Environment, Server], tmp_path: Path
) -> None:
    env, server = running
    vendor = _new_vendor(env, server.url)
    application = _application(vendor, server.url, tmp_path / "store")
    (held,) = application.activate(vendor.ticket())
    _start_listening(application)
    try:
        extended = vendor.act(held.license_id, "extend", days=30)
        assert _eventually(lambda: _valid_until(application) != held.valid_until)
        wanted = datetime.fromisoformat(extended["valid_until"]).replace(microsecond=0)
        assert _valid_until(application) == wanted  # documents keep whole seconds

        vendor.act(held.license_id, "withdraw")
        assert _eventually(lambda: not application.licenses())
        with pytest.raises(NotActivatedError):
            application.require("CAD")
        assert application.status().auto_update_error is None
    finally:
        application.close()


def test_behind_a_proxy_that_cuts_the_stream_the_sdk_polls_and_still_gets_the_update(
    running: tuple[Environment, Server], tmp_path: Path
) -> None:
    env, server = running
    vendor = _new_vendor(env, server.url)
    with cutting_proxy(int(server.url.rsplit(":", 1)[1])) as proxied:
        application = _application(vendor, proxied, tmp_path / "store")
        (held,) = application.activate(vendor.ticket())
        application.start_auto_update(
            jitter=timedelta(0),
            check_interval=timedelta(hours=1),
            poll_interval=timedelta(seconds=1),
        )
        try:
            vendor.act(held.license_id, "extend", days=30)
            assert _eventually(lambda: _valid_until(application) != held.valid_until)
            assert not application.status().push_connected  # every stream was cut
        finally:
            application.close()


class _Stream:
    """A device's raw push stream, read in a thread: each event with what the test
    had done when it arrived."""

    def __init__(self, url: str, vendor: str, device: BareDevice) -> None:
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.phase = "before"
        self._response: httpx.Response | None = None
        body = device.request("listen")
        self._client = httpx.Client(timeout=httpx.Timeout(30, read=None))
        self._request = self._client.build_request(
            "POST",
            f"{url}/api/v1/vendors/{vendor}/devices/events",
            content=body,
            headers={"Content-Type": "application/jose"},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        response = self._client.send(self._request, stream=True)
        assert response.status_code == 200, response.read()
        name = ""
        try:
            for line in response.iter_lines():
                if line.startswith("event:"):
                    name = line.partition(":")[2].strip()
                elif not line and name:
                    self.events.put((name, self.phase))
                    name = ""
        except httpx.HTTPError:
            return

    def next_event(self) -> tuple[str, str]:
        return self.events.get(timeout=PATIENCE)

    def close(self) -> None:
        self._client.close()


def _activated_bare_device(vendor: Vendor) -> tuple[BareDevice, str]:
    device = BareDevice(vendor.slug)
    answer = httpx.post(
        f"{vendor.url}/api/v1/vendors/{vendor.slug}/devices/activate",
        content=device.request("activate", vendor.ticket()),
        headers={"Content-Type": "application/jose"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    (license_,) = vendor.api("GET", "/licenses", params={"state": "activated"})["items"]
    return device, str(license_["id"])


def test_a_device_hears_of_its_own_container_only(running: tuple[Environment, Server]) -> None:
    env, server = running
    alpha, beta = _new_vendor(env, server.url), _new_vendor(env, server.url)
    alpha_device, alpha_license = _activated_bare_device(alpha)
    beta_device, beta_license = _activated_bare_device(beta)
    # The same key, presented to the other vendor, is a device it does not know.
    stranger = httpx.post(
        f"{server.url}/api/v1/vendors/{beta.slug}/devices/events",
        content=_readdressed(alpha_device, beta),
        headers={"Content-Type": "application/jose"},
        timeout=30,
    )
    assert stranger.status_code == 404, stranger.text
    assert stranger.json()["code"] == "DEVICE_NOT_FOUND"

    streams = [
        _Stream(server.url, v.slug, d) for v, d in ((alpha, alpha_device), (beta, beta_device))
    ]
    alpha_stream, beta_stream = streams
    try:
        assert alpha_stream.next_event()[0] == "ready"
        assert beta_stream.next_event()[0] == "ready"

        alpha.act(alpha_license, "extend", days=10)
        alpha.act(alpha_license, "suspend")
        assert alpha_stream.next_event()[0] == "changed"

        beta_stream.phase = "after its own change"
        beta.act(beta_license, "extend", days=10)
        # Had alpha's changes reached beta's stream, an event would have come "before".
        assert beta_stream.next_event() == ("changed", "after its own change")
    finally:
        for stream in streams:
            stream.close()


def _readdressed(device: BareDevice, other: Vendor) -> str:
    """``device``'s listen request, signed by its key but addressed to ``other``."""
    return BareDevice(other.slug, key=device.key, enc=device.enc).request("listen")


def test_a_withdrawal_reaches_a_cloud_client_by_push(
    running: tuple[Environment, Server], tmp_path: Path
) -> None:
    env, server = running
    vendor = _new_vendor(env, server.url)
    product = vendor.api("POST", "/products", json={"code": "CAD", "name": "CAD"})
    template = vendor.api(
        "POST",
        "/templates",
        json={
            "sku": "CAD-CLOUD",
            "name": "CAD in the cloud",
            "product_id": product["id"],
            "options": {"delivery": "cloud"},
        },
    )
    order = vendor.api(
        "POST", "/orders", json={"external_order_id": "C-1", "lines": [{"sku": template["sku"]}]}
    )
    redeemed = httpx.post(
        f"{server.url}/api/v1/vendors/{vendor.slug}/cloud/redeem",
        json={"ticket": order["ticket_code"]},
        timeout=30,
    ).json()
    licred = {
        "licred": 1,
        "server_url": server.url,
        "vendor": vendor.slug,
        "container_id": redeemed["container_id"],
        "credential": redeemed["credential"],
    }
    keys = httpx.get(f"{server.url}/api/v1/vendors/{vendor.slug}/jwks.json", timeout=30).json()
    cloud = CloudClient(
        json.dumps(licred),
        public_keys=keys,
        state_dir=tmp_path / "cloud",
        factor_source=lambda: dict(MACHINE),
    )
    try:
        cloud.start_push()
        assert _eventually(lambda: cloud.push_connected)
        cloud.check("CAD")
        assert cloud.check("CAD").source == "cache"  # kept for most of its life

        vendor.act(redeemed["license_ids"][0], "withdraw")

        assert _eventually(lambda: _refused(cloud))
    finally:
        cloud.close()


def _refused(cloud: CloudClient) -> bool:
    try:
        cloud.check("CAD")
    except LicentiaClientError as error:
        return not isinstance(error, NetworkError)
    return False


def test_on_postgresql_a_change_made_on_another_node_reaches_the_device(
    backend: str, database_url: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("several nodes share PostgreSQL; SQLite serves one process")
    env = environment(database_url, tmp_path)
    migrate(env)
    with serve(env, 2) as (near, far):
        vendor = _new_vendor(env, far.url)  # the vendor's calls go to the other node
        application = _application(vendor, near.url, tmp_path / "store")
        (held,) = application.activate(vendor.ticket())
        _start_listening(application)
        try:
            vendor.act(held.license_id, "extend", days=30)
            assert _eventually(lambda: _valid_until(application) != held.valid_until)
        finally:
            application.close()
