"""An offline computer for the portal's tests: the real client SDK, with no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from licentia.client import LicenseClient, Virtualization

MACHINE = {
    "machine_id": "5a1e2d3c4b5a69788796a5b4c3d2e1f0",
    "product_uuid": "4c4c4544-0042-3510-8051-b4c04f4e3499",
    "mac_addresses": "3c:52:82:1a:2b:99",
    "disk_serial": "S4EWNX0R999999",
    "hostname": "offline-01",
}


def offline_computer(slug: str, jwks: dict[str, Any], store: Path) -> LicenseClient:
    """A device that never talks to License Central: files only."""
    return LicenseClient(
        None,
        slug,
        jwks,
        store_dir=store,
        factor_source=lambda: dict(MACHINE),
        virtualization_probe=lambda: Virtualization(vm=None),
    )
