"""A device license from the operator's first command to the customer's machine and back.

Everything runs as it would in the field: ``licentia`` commands and a ``licentia serve``
process on a loopback port (SQLite and PostgreSQL), the vendor's ERP talking REST with
an API key, and the application embedding the SDK. No test seam is used but the
hardware factors (two machines on one host).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from licentia.client import (
    LicenseClient,
    NetworkError,
    NotActivatedError,
    Virtualization,
)
from tests.e2e.harness.cluster import Environment, Server, environment, migrate, serve

pytestmark = pytest.mark.slow

WORKSTATION = {"machine_id": "ws-7f3a", "mac_addresses": "3c:52:82:1a:2b:3c", "disk": "S4EW-1"}
LAB_PC = {"machine_id": "lab-91c2", "mac_addresses": "a4:bb:6d:00:11:22", "disk": "WD-77"}


@dataclass
class Vendor:
    """A vendor created with the operator's commands, driven through its REST API."""

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

    def jwks(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/api/v1/vendors/{self.slug}/jwks.json", timeout=30).json()


@pytest.fixture
def running(backend: str, database_url: str, tmp_path: Path) -> Iterator[tuple[Vendor, Server]]:
    env = environment(database_url, tmp_path)
    migrate(env)
    slug = f"e2e-{secrets.token_hex(4)}"
    env.cli("admin", "vendor", "create", slug, "--name", "Design Tools Ltd")
    api_key = str(env.cli("admin", "api-key", "create", "--vendor", slug, "--name", "erp")["key"])
    with serve(env, 1) as (server,):
        yield Vendor(env, server.url, slug, api_key), server


def _application(
    vendor: Vendor,
    keys: dict[str, Any],
    store: Path,
    machine: dict[str, str],
    *,
    online: bool,
    **kwargs: Any,
) -> LicenseClient:
    return LicenseClient(
        vendor.url if online else None,
        vendor.slug,
        keys,
        store_dir=store,
        factor_source=lambda: dict(machine),
        virtualization_probe=lambda: Virtualization(),
        **kwargs,
    )


def test_a_device_license_online_offline_by_file_and_returned(
    running: tuple[Vendor, Server], tmp_path: Path
) -> None:
    vendor, server = running
    product = vendor.api(
        "POST",
        "/products",
        json={"code": "CAD", "name": "CAD", "features": [{"code": "edit"}, {"code": "render"}]},
    )
    template = vendor.api(
        "POST",
        "/templates",
        json={
            "sku": "CAD-DEVICE",
            "name": "CAD on one machine",
            "product_id": product["id"],
            "features": ["edit", "render"],
            "options": {"delivery": "device", "lease_days": 7, "refresh_days": 2},
        },
    )
    order = vendor.api(
        "POST",
        "/orders",
        json={"external_order_id": "SO-1001", "lines": [{"sku": template["sku"], "quantity": 2}]},
    )
    ticket = order["ticket_code"]
    keys = vendor.jwks()  # shipped inside the application

    # The workstation activates online and keeps working when License Central goes away.
    workstation = _application(vendor, keys, tmp_path / "ws", WORKSTATION, online=True)
    (entitlement,) = workstation.activate(ticket)
    assert workstation.require("CAD", "render").license_id == entitlement.license_id
    server.stop()
    assert workstation.require("CAD", "edit").license_id == entitlement.license_id
    with pytest.raises(NetworkError):
        workstation.sync()

    # The lab PC has no internet: request file → the vendor's command → update → receipt.
    lab_pc = _application(vendor, keys, tmp_path / "lab", LAB_PC, online=False)
    request = lab_pc.create_offline_request(tmp_path / "lab.request", ticket=ticket)
    update = tmp_path / "lab.update"
    issued = vendor.env.cli(
        "admin", "offline", "process", "--vendor", vendor.slug, str(request), "--out", str(update)
    )
    receipt = lab_pc.import_update(update)
    confirmed = vendor.env.cli("admin", "offline", "receipt", "--vendor", vendor.slug, str(receipt))
    (on_lab,) = lab_pc.licenses()
    assert on_lab.license_id != entitlement.license_id
    assert lab_pc.require("CAD", "render").license_id == on_lab.license_id
    assert confirmed == {"confirmed": issued["seq"]}

    # The workstation gives its license back by file; License Central frees it.
    proof = workstation.create_return_file(entitlement.license_id, tmp_path / "ws.return")
    with pytest.raises(NotActivatedError):
        workstation.require("CAD")
    returned = vendor.env.cli("admin", "offline", "return", "--vendor", vendor.slug, str(proof))
    assert returned == {"license": entitlement.license_id, "state": "returned"}
