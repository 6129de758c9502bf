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

A fingerprint with no recorded factors never matches. The counting rule itself lives in
:mod:`licentia.formats.fingerprint`, which License Central applies too, so the device
and the server can never disagree about a match. A cloned disk on other hardware
keeps ``machine_id``, ``root_fs_uuid`` and ``hostname`` (and ``cpu_model`` on the same
model) but changes ``mac_addresses``, ``disk_serial`` (NVMe and virtio disks expose it
to every user) and the DMI ``product_uuid`` / ``product_serial`` (readable by root
only), so it fails ``strict`` and ``medium``; ``loose`` tolerates it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from licentia.client._exceptions import FingerprintMismatchError
from licentia.client._frozen import FrozenValue
from licentia.client._mac import HmacSha256
from licentia.formats import fingerprint as shared_rule

__all__ = [
    "FactorSource",
    "Fingerprint",
    "FingerprintMatch",
    "SystemFactorSource",
    "Tolerance",
    "checked_fingerprint",
    "collect_fingerprint",
    "ensure_fingerprint_matches",
    "fingerprint_matches",
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

    @classmethod
    def _of_digests(cls, hashes: dict[str, str]) -> Fingerprint:
        # For digests that were checked or computed already, in name order: they need
        # neither checking nor sorting.
        fingerprint = cls.__new__(cls)
        fingerprint._hashes = hashes
        return fingerprint


def checked_fingerprint(hashes: dict[str, str]) -> Fingerprint:
    """A fingerprint of digests that were checked when they were recorded (the device
    store's own, under its MAC): opening the store need not check them again. The
    store's canonical JSON keeps the names sorted, so ``hashes`` is used as it is."""
    return Fingerprint._of_digests(hashes)


def _digests(fingerprint: Mapping[str, str]) -> Mapping[str, str]:
    # A Fingerprint's mapping methods run in Python, its dict's do not: matching runs
    # once per license on every cold start. (A type check: isinstance of a Mapping
    # subclass goes through ABCMeta in Python.)
    return fingerprint._hashes if type(fingerprint) is Fingerprint else fingerprint


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
    mac = HmacSha256(salt)
    for name, raw in sorted(factors.items()):
        value = " ".join(raw.split()).lower()
        if value:
            hashes[name] = mac.hexdigest(f"{name}\x00{value}".encode())
    if "" in hashes:
        raise ValueError("a factor name must not be empty")
    return Fingerprint._of_digests(hashes)


def collect_fingerprint(salt: bytes, source: FactorSource | None = None) -> Fingerprint:
    """Collect this machine's factors from ``source`` (default: the system) and hash them."""
    return hash_factors((source or SystemFactorSource())(), salt)


ToleranceName = Literal["strict", "medium", "loose", "k-of-n"]
_K_OF_N = re.compile(r"([1-9][0-9]*)-of-n")


class Tolerance(FrozenValue):
    """How many of the factors recorded at activation must still match (see module doc)."""

    __slots__ = _fields = ("name", "k")
    name: ToleranceName
    k: int | None

    def __init__(self, name: ToleranceName, k: int | None = None) -> None:
        if (name == "k-of-n") != (k is not None):
            raise ValueError("k is given exactly for the k-of-n tolerance")
        if k is not None and k < 1:
            raise ValueError("k must be at least 1")
        self._assign(name, k)

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
        preset = _PRESETS.get(text)
        if preset is not None:
            return preset
        match = _K_OF_N.fullmatch(text)
        if match is None:
            raise ValueError(f"unknown fingerprint tolerance {text!r}")
        return cls.at_least(int(match.group(1)))

    def __str__(self) -> str:
        return f"{self.k}-of-n" if self.k is not None else self.name

    @classmethod
    def from_option(cls, option: Mapping[str, Any] | None) -> Tolerance:
        """Read a template's ``fingerprint_tolerance`` option (``{"preset": ...}`` or
        ``{"k": k, "n": n}``); a missing option is ``medium``, as on the server.
        Raises ValueError for anything else."""
        option = option or {}
        if option.get("k") is not None:
            k = option["k"]
            if not isinstance(k, int) or isinstance(k, bool):
                raise ValueError(f"unknown fingerprint tolerance {dict(option)!r}")
            return cls.at_least(k)
        preset = option.get("preset") or "medium"
        # Every license's option is read on every cold start: a preset needs no parsing.
        found = _PRESETS.get(preset) if isinstance(preset, str) else None
        return found or cls.parse(str(preset))

    def as_option(self) -> dict[str, Any]:
        """The template option this tolerance stands for (see :meth:`from_option`)."""
        return {"k": self.k} if self.k is not None else {"preset": self.name}

    def required_matches(self, recorded: int) -> int:
        """How many of ``recorded`` factors must match; 0 recorded factors need 1 (never)."""
        return shared_rule.required_matches(self.as_option(), recorded)


# Immutable, so every license of a preset shares one (each license's option is read on load).
_PRESETS: dict[str, Tolerance] = {
    "strict": Tolerance("strict"),
    "medium": Tolerance("medium"),
    "loose": Tolerance("loose"),
}


class FingerprintMatch(FrozenValue):
    """The outcome of comparing a current fingerprint with the recorded one."""

    __slots__ = _fields = ("matched", "required", "recorded", "changed")
    matched: int
    required: int
    recorded: int
    changed: tuple[str, ...]

    def __init__(
        self, matched: int, required: int, recorded: int, changed: tuple[str, ...]
    ) -> None:
        self._assign(matched, required, recorded, changed)

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
    recorded, current = _digests(recorded), _digests(current)
    changed = tuple(
        sorted(name for name, digest in recorded.items() if current.get(name) != digest)
    )
    return FingerprintMatch(
        matched=len(recorded) - len(changed),
        required=tolerance.required_matches(len(recorded)),
        recorded=len(recorded),
        changed=changed,
    )


def fingerprint_matches(
    recorded: Mapping[str, str], current: Mapping[str, str], tolerance: Tolerance
) -> bool:
    """Whether :func:`ensure_fingerprint_matches` would pass, without its report: the
    check every license makes on every cold start."""
    # _digests, spelled out: every license makes this check on every cold start.
    if type(recorded) is Fingerprint:
        recorded = recorded._hashes
    if type(current) is Fingerprint:
        current = current._hashes
    if recorded == current and recorded:
        # Every recorded factor matches, and no tolerance asks for more than all of them.
        return True
    return shared_rule.fingerprint_matches(recorded, current, tolerance.as_option())


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


def read_system_file(path: Path) -> str | None:
    """The trimmed content of ``path``; None if absent, unreadable or a firmware placeholder."""
    # Many of these files are root-only or absent; a missing factor is normal.
    try:
        value = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return None if value.lower() in _JUNK_VALUES else value


class SystemFactorSource(FrozenValue):
    """Reads the factors of the Linux system mounted at ``root`` (tests pass a fake tree)."""

    __slots__ = _fields = ("root",)
    root: Path

    def __init__(self, root: Path = Path("/")) -> None:
        self._assign(root)

    def __call__(self) -> dict[str, str]:
        collectors: dict[str, Callable[[], str | None]] = {
            "machine_id": self._machine_id,
            "product_uuid": lambda: read_system_file(self._path("sys/class/dmi/id/product_uuid")),
            "product_serial": lambda: read_system_file(
                self._path("sys/class/dmi/id/product_serial")
            ),
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
        return read_system_file(self._path("etc/machine-id")) or read_system_file(
            self._path("var/lib/dbus/machine-id")
        )

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
        return read_system_file(disk / "device" / "serial") or read_system_file(disk / "serial")

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
        text = read_system_file(self._path("proc/cpuinfo")) or ""
        for key in ("model name", "Hardware", "Model", "cpu model"):
            for line in text.splitlines():
                label, _, value = line.partition(":")
                if label.strip() == key and value.strip():
                    return value.strip()
        return None

    def _hostname(self) -> str | None:
        found = read_system_file(self._path("proc/sys/kernel/hostname")) or read_system_file(
            self._path("etc/hostname")
        )
        if found is None and self.root == Path("/"):
            # Not Linux: the hostname is the one factor every platform offers.
            import socket  # only when the host name is a factor being read

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
    mac = (read_system_file(interface / "address") or "").lower()
    if not re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", mac):
        return None
    # Locally administered addresses are randomised or assigned by software.
    return None if int(mac[:2], 16) & 0x02 else mac


def _root_mount(mountinfo: Path) -> tuple[str, str] | None:
    """``(major:minor, source)`` of the last mount on / (later mounts hide earlier ones)."""
    found = None
    for line in (read_system_file(mountinfo) or "").splitlines():
        fields, _, tail = line.partition(" - ")
        parts, rest = fields.split(), tail.split()
        if len(parts) >= 5 and parts[4] == "/" and len(rest) >= 2:
            found = (parts[2], rest[1])
    return found
