"""Virtual machine and container detection, for the license's VM policy.

:class:`SystemVirtualizationProbe` follows the heuristics of ``systemd-detect-virt``:
DMI vendor strings, the CPU's ``hypervisor`` flag, Xen's ``/proc/xen``, and container
markers (``/.dockerenv``, ``/run/.containerenv``, ``/run/systemd/container``, cgroup
names, WSL's kernel release). Any callable returning a :class:`Virtualization` can
replace it (tests, other platforms).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from licentia.client._exceptions import VirtualMachineNotAllowedError
from licentia.client._fingerprint import read_system_file
from licentia.client._frozen import FrozenValue

__all__ = [
    "SystemVirtualizationProbe",
    "Virtualization",
    "VirtualizationProbe",
    "ensure_virtualization_allowed",
]


class Virtualization(FrozenValue):
    """What the process runs in; ``None`` means not detected.

    ``vm`` names the hypervisor (``kvm``, ``vmware``, ``oracle``…, or ``hypervisor``
    when only the CPU flag says so); ``container`` names the runtime (``docker``,
    ``podman``, ``kubernetes``, ``lxc``, ``wsl``…). Both can be set: a container in a VM.
    """

    __slots__ = _fields = ("vm", "container")
    vm: str | None
    container: str | None

    def __init__(self, vm: str | None = None, container: str | None = None) -> None:
        self._assign(vm, container)

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


class SystemVirtualizationProbe(FrozenValue):
    """Detects VMs and containers from the Linux system mounted at ``root``."""

    __slots__ = _fields = ("root",)
    root: Path

    def __init__(self, root: Path = Path("/")) -> None:
        self._assign(root)

    def __call__(self) -> Virtualization:
        return Virtualization(vm=self._vm(), container=self._container())

    def _path(self, relative: str) -> Path:
        return self.root / relative

    def _vm(self) -> str | None:
        return self._vm_from_dmi() or self._vm_from_xen() or self._vm_from_cpu_flags()

    def _vm_from_dmi(self) -> str | None:
        dmi = {
            field: read_system_file(self._path(f"sys/class/dmi/id/{field}")) or ""
            for field in _DMI_FIELDS
        }
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
        hypervisor = read_system_file(self._path("sys/hypervisor/type"))
        if hypervisor == "xen" or self._path("proc/xen").exists():
            return "xen"
        return None

    def _vm_from_cpu_flags(self) -> str | None:
        for line in (read_system_file(self._path("proc/cpuinfo")) or "").splitlines():
            label, _, value = line.partition(":")
            if label.strip() == "flags" and "hypervisor" in value.split():
                return "hypervisor"
        return None

    def _container(self) -> str | None:
        declared = read_system_file(self._path("run/systemd/container"))
        if declared:
            return declared
        if self._path(".dockerenv").exists():
            return "docker"
        if self._path("run/.containerenv").exists():
            return "podman"
        return self._container_from_cgroup() or self._container_from_kernel()

    def _container_from_cgroup(self) -> str | None:
        cgroup = read_system_file(self._path("proc/1/cgroup")) or ""
        for hint, name in _CGROUP_HINTS:
            if hint in cgroup:
                return name
        return None

    def _container_from_kernel(self) -> str | None:
        release = (read_system_file(self._path("proc/sys/kernel/osrelease")) or "").lower()
        return "wsl" if "microsoft" in release or "wsl" in release else None
