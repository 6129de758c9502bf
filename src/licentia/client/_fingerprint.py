"""Device fingerprints: several hashed hardware and system factors, matched with a tolerance.

A *factor* is one identifying value of the machine (``machine_id``, ``mac_addresses``…).
Factors are collected by a :class:`FactorSource` — any callable returning
``{name: raw value}`` — so tests and other platforms plug in their own. The built-in
:class:`SystemFactorSource` reads Linux's ``/etc``, ``/proc``, ``/sys`` and ``/dev``
below a configurable root; on other systems it finds only the hostname, so an
application there should pass its own source.

Each raw value is hashed with HMAC-SHA256 keyed by a vendor-specific salt, so raw
hardware ids never leave the machine and two vendors cannot link their devices. The
salt is not secret (it ships with the application): the hash does not stop someone who
holds it from confirming a guessed low-entropy value such as a CPU model.

A :class:`Tolerance` says how many of the factors recorded at activation must still
match. Factors the device has gained since are ignored; factors it has lost count as
changed. With ``n`` recorded factors:

- ``strict``: all ``n``;
- ``medium``: all but one (``n - 1``, at least 1) — a new network card keeps the
  license;
- ``loose``: at least half (``ceil(n / 2)``, at least 1);
- ``k-of-n``: at least ``min(k, n)`` — a device that records fewer than ``k`` factors
  must match all of them.

A fingerprint with no recorded factors never matches. A cloned disk on other hardware
keeps ``machine_id``, ``root_fs_uuid`` and ``hostname`` (and ``cpu_model`` on the same
model) but changes ``mac_addresses``, ``disk_serial`` (NVMe and virtio disks expose it
to every user) and the DMI ``product_uuid`` / ``product_serial`` (readable by root
only), so it fails ``strict`` and ``medium``; ``loose`` tolerates it.

Virtualization detection (:class:`SystemVirtualizationProbe`) follows the heuristics
of ``systemd-detect-virt``: DMI vendor strings, the CPU's ``hypervisor`` flag, Xen's
``/proc/xen``, and container markers (``/.dockerenv``, ``/run/.containerenv``,
``/run/systemd/container``, cgroup names, WSL's kernel release).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from licentia.client._exceptions import FingerprintMismatchError, VirtualMachineNotAllowedError

__all__ = [
    "FactorSource",
    "Fingerprint",
    "FingerprintMatch",
    "SystemFactorSource",
    "SystemVirtualizationProbe",
    "Tolerance",
    "Virtualization",
    "VirtualizationProbe",
    "collect_fingerprint",
    "ensure_fingerprint_matches",
    "ensure_virtualization_allowed",
    "hash_factors",
    "match_fingerprint",
]

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class FactorSource(Protocol):
    """Anything that returns the machine's raw factors as ``{name: value}``."""

    def __call__(self) -> Mapping[str, str]: ...


class Fingerprint(Mapping[str, str]):
    """An immutable mapping of factor name to the factor's hex HMAC-SHA256."""

    __slots__ = ("_hashes",)

    def __init__(self, hashes: Mapping[str, str]) -> None:
        """Raises ValueError unless every name is non-empty and every hash is 64 hex digits."""
        for name, digest in hashes.items():
            if not name or not isinstance(digest, str) or not _HEX_DIGEST.fullmatch(digest):
                raise ValueError(f"factor {name!r} does not hold a SHA-256 hex digest")
        self._hashes = dict(sorted(hashes.items()))

    def __getitem__(self, name: str) -> str:
        return self._hashes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._hashes)

    def __len__(self) -> int:
        return len(self._hashes)

    def __repr__(self) -> str:
        return f"Fingerprint({self._hashes!r})"

    def as_dict(self) -> dict[str, str]:
        """A plain dict copy, for JSON."""
        return dict(self._hashes)


def hash_factors(factors: Mapping[str, str], salt: bytes) -> Fingerprint:
    """Hash each raw factor with HMAC-SHA256 keyed by the vendor's ``salt``.

    Values are normalised (trimmed, lower-cased, inner whitespace collapsed) so that
    cosmetic differences do not count as a change; empty values are dropped. The factor
    name is part of the message, so equal values under two names hash differently.
    Raises ValueError if ``salt`` is empty.
    """
    if not salt:
        raise ValueError("the fingerprint salt must not be empty")
    hashes: dict[str, str] = {}
    for name, raw in factors.items():
        value = " ".join(raw.split()).lower()
        if value:
            message = f"{name}\x00{value}".encode()
            hashes[name] = hmac.new(salt, message, hashlib.sha256).hexdigest()
    return Fingerprint(hashes)


def collect_fingerprint(salt: bytes, source: FactorSource | None = None) -> Fingerprint:
    """Collect this machine's factors from ``source`` (default: the system) and hash them."""
    return hash_factors((source or SystemFactorSource())(), salt)


ToleranceName = Literal["strict", "medium", "loose", "k-of-n"]
_PRESETS: tuple[ToleranceName, ...] = ("strict", "medium", "loose")
_K_OF_N = re.compile(r"([1-9][0-9]*)-of-n")


@dataclass(frozen=True)
class Tolerance:
    """How many of the factors recorded at activation must still match (see module doc)."""

    name: ToleranceName
    k: int | None = None

    def __post_init__(self) -> None:
        if (self.name == "k-of-n") != (self.k is not None):
            raise ValueError("k is given exactly for the k-of-n tolerance")
        if self.k is not None and self.k < 1:
            raise ValueError("k must be at least 1")

    @classmethod
    def strict(cls) -> Tolerance:
        return cls("strict")

    @classmethod
    def medium(cls) -> Tolerance:
        return cls("medium")

    @classmethod
    def loose(cls) -> Tolerance:
        return cls("loose")

    @classmethod
    def at_least(cls, k: int) -> Tolerance:
        """The custom ``k-of-n`` tolerance."""
        return cls("k-of-n", k)

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """Read ``strict``, ``medium``, ``loose`` or ``<k>-of-n``; raises ValueError otherwise."""
        for preset in _PRESETS:
            if text == preset:
                return cls(preset)
        match = _K_OF_N.fullmatch(text)
        if match is None:
            raise ValueError(f"unknown fingerprint tolerance {text!r}")
        return cls.at_least(int(match.group(1)))

    def __str__(self) -> str:
        return f"{self.k}-of-n" if self.k is not None else self.name

    def required_matches(self, recorded: int) -> int:
        """How many of ``recorded`` factors must match; 0 recorded factors need 1 (never)."""
        if recorded <= 0:
            return 1
        if self.k is not None:
            return min(self.k, recorded)
        if self.name == "strict":
            return recorded
        if self.name == "medium":
            return max(1, recorded - 1)
        return max(1, math.ceil(recorded / 2))


@dataclass(frozen=True)
class FingerprintMatch:
    """The outcome of comparing a current fingerprint with the recorded one."""

    matched: int
    required: int
    recorded: int
    changed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.matched >= self.required


def match_fingerprint(
    recorded: Mapping[str, str], current: Mapping[str, str], tolerance: Tolerance
) -> FingerprintMatch:
    """Compare ``current`` with the ``recorded`` fingerprint under ``tolerance``.

    ``changed`` names the recorded factors that differ or are missing now; factor names
    are not secret, and naming them lets support tell a new network card from a new machine.
    """
    changed = tuple(
        name for name, digest in sorted(recorded.items()) if current.get(name) != digest
    )
    return FingerprintMatch(
        matched=len(recorded) - len(changed),
        required=tolerance.required_matches(len(recorded)),
        recorded=len(recorded),
        changed=changed,
    )


def ensure_fingerprint_matches(
    recorded: Mapping[str, str], current: Mapping[str, str], tolerance: Tolerance
) -> FingerprintMatch:
    """Return the match if it is good enough; raises FingerprintMismatchError otherwise."""
    result = match_fingerprint(recorded, current, tolerance)
    if not result.ok:
        raise FingerprintMismatchError(
            f"This device no longer matches the device the license was activated on "
            f"({result.matched} of {result.recorded} hardware factors match, "
            f"{result.required} needed; changed: {', '.join(result.changed)}). "
            "Return the license from the old device, or ask your vendor to reset the activation."
        )
    return result


# -- factor collection (Linux) ---------------------------------------------------------

# Placeholder values firmware vendors leave in DMI fields; they identify nothing.
# fmt: off
_JUNK_VALUES = frozenset({
    "", "0", "none", "n/a", "not specified", "not applicable", "system serial number",
    "to be filled by o.e.m.", "default string", "uninitialized",
    "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "03000200-0400-0500-0006-000700080009",
})
# fmt: on


def _read(path: Path) -> str | None:
    # Many of these files are root-only or absent; a missing factor is normal.
    try:
        value = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return None if value.lower() in _JUNK_VALUES else value


@dataclass(frozen=True)
class SystemFactorSource:
    """Reads the factors of the Linux system mounted at ``root`` (tests pass a fake tree)."""

    root: Path = Path("/")

    def __call__(self) -> dict[str, str]:
        collectors: dict[str, Callable[[], str | None]] = {
            "machine_id": self._machine_id,
            "product_uuid": lambda: _read(self._path("sys/class/dmi/id/product_uuid")),
            "product_serial": lambda: _read(self._path("sys/class/dmi/id/product_serial")),
            "mac_addresses": self._mac_addresses,
            "root_fs_uuid": self._root_fs_uuid,
            "disk_serial": self._disk_serial,
            "cpu_model": self._cpu_model,
            "hostname": self._hostname,
        }
        factors = {name: collect() for name, collect in collectors.items()}
        return {name: value for name, value in factors.items() if value}

    def _path(self, relative: str) -> Path:
        return self.root / relative

    def _machine_id(self) -> str | None:
        return _read(self._path("etc/machine-id")) or _read(self._path("var/lib/dbus/machine-id"))

    def _mac_addresses(self) -> str | None:
        macs = sorted(
            mac for iface in _list_dir(self._path("sys/class/net")) if (mac := _physical_mac(iface))
        )
        return ",".join(macs) or None

    def _root_fs_uuid(self) -> str | None:
        device = self._root_block_device()
        if device is None:
            return None
        for link in _list_dir(self._path("dev/disk/by-uuid")):
            if _link_target_name(link) == device:
                return link.name
        return None

    def _disk_serial(self) -> str | None:
        device = self._root_block_device()
        if device is None:
            return None
        block = self._path("sys/class/block") / device
        # A partition's sysfs directory sits inside its disk's directory.
        disk = block.resolve().parent if (block / "partition").exists() else block.resolve()
        return _read(disk / "device" / "serial") or _read(disk / "serial")

    def _root_block_device(self) -> str | None:
        """The kernel name (``nvme0n1p2``, ``sda1``, ``dm-0``) of the device mounted on /."""
        entry = _root_mount(self._path("proc/self/mountinfo"))
        if entry is None:
            return None
        major_minor, source = entry
        by_number = self._path("sys/dev/block") / major_minor
        if by_number.exists():
            return by_number.resolve().name
        if source.startswith("/dev/"):
            return Path(os.path.realpath(self._path(source.lstrip("/")))).name
        return None

    def _cpu_model(self) -> str | None:
        text = _read(self._path("proc/cpuinfo")) or ""
        for key in ("model name", "Hardware", "Model", "cpu model"):
            for line in text.splitlines():
                label, _, value = line.partition(":")
                if label.strip() == key and value.strip():
                    return value.strip()
        return None

    def _hostname(self) -> str | None:
        found = _read(self._path("proc/sys/kernel/hostname")) or _read(self._path("etc/hostname"))
        if found is None and self.root == Path("/"):
            # Not Linux: the hostname is the one factor every platform offers.
            return socket.gethostname() or None
        return found


def _list_dir(path: Path) -> list[Path]:
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _link_target_name(link: Path) -> str | None:
    try:
        return Path(os.readlink(link)).name
    except OSError:
        return None


def _physical_mac(interface: Path) -> str | None:
    # Virtual interfaces (bridges, veth, tun, docker0, lo) have no backing `device`.
    if not (interface / "device").exists():
        return None
    mac = (_read(interface / "address") or "").lower()
    if not re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac):
        return None
    # Locally administered addresses are randomised or assigned by software.
    return None if int(mac[:2], 16) & 0x02 else mac


def _root_mount(mountinfo: Path) -> tuple[str, str] | None:
    """``(major:minor, source)`` of the last mount on / (later mounts hide earlier ones)."""
    found = None
    for line in (_read(mountinfo) or "").splitlines():
        fields, _, tail = line.partition(" - ")
        parts, rest = fields.split(), tail.split()
        if len(parts) >= 5 and parts[4] == "/" and len(rest) >= 2:
            found = (parts[2], rest[1])
    return found


# -- virtualization ------------------------------------------------------------------


@dataclass(frozen=True)
class Virtualization:
    """What the process runs in; ``None`` means not detected.

    ``vm`` names the hypervisor (``kvm``, ``vmware``, ``oracle``…, or ``hypervisor``
    when only the CPU flag says so); ``container`` names the runtime (``docker``,
    ``podman``, ``kubernetes``, ``lxc``, ``wsl``…). Both can be set: a container in a VM.
    """

    vm: str | None = None
    container: str | None = None

    @property
    def is_virtual(self) -> bool:
        return self.vm is not None or self.container is not None


class VirtualizationProbe(Protocol):
    """Anything that tells what the process runs in."""

    def __call__(self) -> Virtualization: ...


def ensure_virtualization_allowed(
    virtualization: Virtualization, *, allow_vm: bool, allow_container: bool
) -> None:
    """Raises VirtualMachineNotAllowedError if the license's VM policy forbids where we run."""
    if virtualization.vm is not None and not allow_vm:
        raise VirtualMachineNotAllowedError(
            f"This license may not run in a virtual machine (detected: {virtualization.vm}). "
            "Run the software on a physical machine, or ask your vendor for a license that "
            "allows virtual machines."
        )
    if virtualization.container is not None and not allow_container:
        raise VirtualMachineNotAllowedError(
            f"This license may not run in a container (detected: {virtualization.container}). "
            "Run the software outside the container, or ask your vendor for a license that "
            "allows containers."
        )


# DMI vendor and product prefixes, as systemd-detect-virt reads them.
# fmt: off
_DMI_VENDORS = (
    ("KVM", "kvm"), ("OpenStack", "kvm"), ("KubeVirt", "kvm"), ("Amazon EC2", "amazon"),
    ("QEMU", "qemu"), ("VMware", "vmware"), ("VMW", "vmware"), ("innotek GmbH", "oracle"),
    ("VirtualBox", "oracle"), ("Xen", "xen"), ("Bochs", "bochs"), ("Parallels", "parallels"),
    ("BHYVE", "bhyve"), ("Hyper-V", "microsoft"), ("Google Compute Engine", "google"),
    ("Apple Virtualization", "apple"),
)
_DMI_FIELDS = ("sys_vendor", "product_name", "board_vendor", "bios_vendor")
_CGROUP_HINTS = (
    ("kubepods", "kubernetes"), ("docker", "docker"), ("libpod", "podman"), ("lxc", "lxc"),
    ("containerd", "containerd"),
)
# fmt: on


@dataclass(frozen=True)
class SystemVirtualizationProbe:
    """Detects VMs and containers from the Linux system mounted at ``root``."""

    root: Path = Path("/")

    def __call__(self) -> Virtualization:
        return Virtualization(vm=self._vm(), container=self._container())

    def _path(self, relative: str) -> Path:
        return self.root / relative

    def _vm(self) -> str | None:
        return self._vm_from_dmi() or self._vm_from_xen() or self._vm_from_cpu_flags()

    def _vm_from_dmi(self) -> str | None:
        dmi = {field: _read(self._path(f"sys/class/dmi/id/{field}")) or "" for field in _DMI_FIELDS}
        # Microsoft also sells physical machines (Surface); only its VMs say "Virtual Machine".
        vendor, product = dmi["sys_vendor"], dmi["product_name"]
        if vendor.startswith("Microsoft Corporation") and product.startswith("Virtual Machine"):
            return "microsoft"
        for value in dmi.values():
            for prefix, name in _DMI_VENDORS:
                if value.startswith(prefix):
                    return name
        return None

    def _vm_from_xen(self) -> str | None:
        hypervisor = _read(self._path("sys/hypervisor/type"))
        if hypervisor == "xen" or self._path("proc/xen").exists():
            return "xen"
        return None

    def _vm_from_cpu_flags(self) -> str | None:
        for line in (_read(self._path("proc/cpuinfo")) or "").splitlines():
            label, _, value = line.partition(":")
            if label.strip() == "flags" and "hypervisor" in value.split():
                return "hypervisor"
        return None

    def _container(self) -> str | None:
        declared = _read(self._path("run/systemd/container"))
        if declared:
            return declared
        if self._path(".dockerenv").exists():
            return "docker"
        if self._path("run/.containerenv").exists():
            return "podman"
        return self._container_from_cgroup() or self._container_from_kernel()

    def _container_from_cgroup(self) -> str | None:
        cgroup = _read(self._path("proc/1/cgroup")) or ""
        for hint, name in _CGROUP_HINTS:
            if hint in cgroup:
                return name
        return None

    def _container_from_kernel(self) -> str | None:
        release = (_read(self._path("proc/sys/kernel/osrelease")) or "").lower()
        return "wsl" if "microsoft" in release or "wsl" in release else None
