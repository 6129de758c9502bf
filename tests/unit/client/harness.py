"""Devices for the SDK's offline tests: machines, a clock to drive, a client per store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from licentia.client import LicenseClient, Virtualization

from .vendor import BareVendor, Offer

MACHINE = {
    "machine_id": "3d1219c7c4c5404aaa1f6d2a48adfda4",
    "product_uuid": "4c4c4544-0042-3510-8051-b4c04f4e3432",
    "mac_addresses": "3c:52:82:1a:2b:3c",
    "disk_serial": "S4EWNX0R123456",
    "hostname": "build-07",
}
# The same disk cloned into other hardware: machine id and hostname travel with it.
CLONE = MACHINE | {
    "product_uuid": "4c4c4544-0000-1111-2222-333344445555",
    "mac_addresses": "a4:bb:6d:00:11:22",
    "disk_serial": "WD-WX11A1234567",
}
OTHER_MACHINE = {name: f"other-{value}" for name, value in MACHINE.items()}


class Clock:
    """The device's clock, which a test sets forward and back."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def physical() -> Virtualization:
    return Virtualization()


def virtual_machine() -> Virtualization:
    return Virtualization(vm="kvm")


@dataclass
class Harness:
    """Builds clients on stores below ``root``, all of one vendor and one clock."""

    root: Path
    vendor: BareVendor
    clock: Clock

    def client(
        self,
        name: str = "device",
        *,
        machine: dict[str, str] | None = None,
        probe=physical,
    ) -> LicenseClient:
        factors = dict(machine or MACHINE)
        return LicenseClient(
            None,
            self.vendor.slug,
            self.vendor.jwks,
            store_dir=self.root / name,
            factor_source=lambda: factors,
            virtualization_probe=probe,
            local_clock=self.clock,
        )

    def update_file(self, client: LicenseClient, *offers: Offer, name: str = "update") -> Path:
        """The vendor's answer to a fresh request of ``client``, as a file."""
        request = client.create_offline_request(self.root / f"{name}.request")
        return self.vendor.answer(
            request, self.root / f"{name}.update", *offers, now=self.clock.now
        )

    def activate(self, client: LicenseClient, *offers: Offer, name: str = "update") -> Path:
        """Run the file round trip; returns the receipt."""
        return client.import_update(self.update_file(client, *offers, name=name))
