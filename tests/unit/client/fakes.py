"""Fake Linux machines as file trees, for the factor source and the virtualization probe."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

NVME = "sys/devices/pci0000:00/0000:00:1d.0/nvme/nvme0/nvme0n1"


@dataclass
class Machine:
    """The identifying values of one fake machine; `build` lays them out below a root."""

    machine_id: str = "3d1219c7c4c5404aaa1f6d2a48adfda4"
    product_uuid: str | None = "4c4c4544-0042-3510-8051-b4c04f4e3432"
    product_serial: str | None = "B5QN4F2"
    macs: dict[str, str] = field(default_factory=lambda: {"eth0": "3c:52:82:1a:2b:3c"})
    root_fs_uuid: str = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    disk_serial: str = "S4EWNX0R123456"
    cpu_model: str = "Intel(R) Core(TM) i7-10610U CPU @ 1.80GHz"
    hostname: str = "build-07"

    def build(self, root: Path) -> Path:
        """Write this machine's files below ``root`` and return ``root``."""
        write(root, "etc/machine-id", self.machine_id + "\n")
        if self.product_uuid is not None:
            write(root, "sys/class/dmi/id/product_uuid", self.product_uuid)
        if self.product_serial is not None:
            write(root, "sys/class/dmi/id/product_serial", self.product_serial)
        for name, mac in self.macs.items():
            write(root, f"sys/class/net/{name}/address", mac)
            (root / f"sys/class/net/{name}/device").mkdir()
        write(root, "sys/class/net/lo/address", "00:00:00:00:00:00")
        write(root, "sys/class/net/docker0/address", "02:42:ac:11:00:01")
        write(root, "proc/cpuinfo", f"processor\t: 0\nmodel name\t: {self.cpu_model}\n")
        write(root, "proc/sys/kernel/hostname", self.hostname)
        self._build_root_disk(root)
        return root

    def _build_root_disk(self, root: Path) -> None:
        write(
            root,
            "proc/self/mountinfo",
            "22 27 0:21 / /proc rw - proc proc rw\n"
            "27 1 259:2 / / rw,relatime - ext4 /dev/nvme0n1p2 rw\n",
        )
        write(root, f"{NVME}/device/serial", self.disk_serial)
        write(root, f"{NVME}/nvme0n1p2/partition", "2")
        link(root, "sys/dev/block/259:2", f"../../../{NVME}/nvme0n1p2")
        link(root, "sys/class/block/nvme0n1p2", f"../../../{NVME}/nvme0n1p2")
        link(root, f"dev/disk/by-uuid/{self.root_fs_uuid}", "../../nvme0n1p2")


def write(root: Path, relative: str, content: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)


def link(root: Path, relative: str, target: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


class MemoryMark:
    """A time high-water mark kept in memory, counting its writes."""

    def __init__(self, value: datetime | None = None) -> None:
        self.value = value
        self.writes = 0

    def read_time_high_water(self) -> datetime | None:
        return self.value

    def write_time_high_water(self, value: datetime) -> None:
        self.value = value
        self.writes += 1
