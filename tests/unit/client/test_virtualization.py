"""Virtual machine and container detection, and the license's VM policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from licentia.client import (
    SystemVirtualizationProbe,
    Virtualization,
    VirtualMachineNotAllowedError,
    ensure_virtualization_allowed,
)

from .fakes import Machine, write

BARE_METAL_FLAGS = "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sse2 avx2\n"


def _probe(root: Path) -> Virtualization:
    return SystemVirtualizationProbe(root)()


def test_a_physical_machine_is_not_virtual(tmp_path: Path) -> None:
    Machine().build(tmp_path)
    write(tmp_path, "sys/class/dmi/id/sys_vendor", "Dell Inc.")
    write(tmp_path, "sys/class/dmi/id/product_name", "Latitude 7410")
    write(tmp_path, "proc/cpuinfo", BARE_METAL_FLAGS)
    write(tmp_path, "proc/1/cgroup", "0::/init.scope\n")

    assert _probe(tmp_path) == Virtualization()
    assert not _probe(tmp_path).is_virtual


@pytest.mark.parametrize(
    ("field", "value", "vm"),
    [
        ("sys_vendor", "QEMU", "qemu"),
        ("sys_vendor", "VMware, Inc.", "vmware"),
        ("product_name", "VirtualBox", "oracle"),
        ("sys_vendor", "innotek GmbH", "oracle"),
        ("product_name", "KVM", "kvm"),
        ("sys_vendor", "Xen", "xen"),
        ("sys_vendor", "Amazon EC2", "amazon"),
        ("bios_vendor", "Google Compute Engine", "google"),
        ("board_vendor", "Parallels Software International Inc.", "parallels"),
    ],
)
def test_hypervisors_are_named_from_dmi(tmp_path: Path, field: str, value: str, vm: str) -> None:
    write(tmp_path, f"sys/class/dmi/id/{field}", value)

    assert _probe(tmp_path).vm == vm


def test_hyper_v_is_told_apart_from_microsoft_hardware(tmp_path: Path) -> None:
    hyper_v, surface = tmp_path / "hyper-v", tmp_path / "surface"
    for root, product in ((hyper_v, "Virtual Machine"), (surface, "Surface Laptop 4")):
        write(root, "sys/class/dmi/id/sys_vendor", "Microsoft Corporation")
        write(root, "sys/class/dmi/id/product_name", product)

    assert _probe(hyper_v).vm == "microsoft"
    assert _probe(surface).vm is None


def test_the_cpu_hypervisor_flag_reveals_an_unnamed_vm(tmp_path: Path) -> None:
    write(tmp_path, "proc/cpuinfo", BARE_METAL_FLAGS.rstrip("\n") + " hypervisor\n")

    assert _probe(tmp_path).vm == "hypervisor"


def test_xen_is_seen_from_its_hypervisor_type(tmp_path: Path) -> None:
    write(tmp_path, "sys/hypervisor/type", "xen")

    assert _probe(tmp_path).vm == "xen"


@pytest.mark.parametrize(
    ("relative", "content", "container"),
    [
        (".dockerenv", "", "docker"),
        ("run/.containerenv", "", "podman"),
        ("run/systemd/container", "systemd-nspawn\n", "systemd-nspawn"),
        ("proc/1/cgroup", "0::/kubepods/besteffort/pod1234/abcd\n", "kubernetes"),
        ("proc/1/cgroup", "12:memory:/docker/4f3c2a\n", "docker"),
        ("proc/1/cgroup", "0::/lxc.payload.web/\n", "lxc"),
        ("proc/sys/kernel/osrelease", "5.15.90.1-microsoft-standard-WSL2", "wsl"),
    ],
)
def test_containers_are_named_from_their_markers(
    tmp_path: Path, relative: str, content: str, container: str
) -> None:
    write(tmp_path, relative, content)

    assert _probe(tmp_path).container == container


def test_a_container_in_a_vm_reports_both(tmp_path: Path) -> None:
    write(tmp_path, "sys/class/dmi/id/sys_vendor", "QEMU")
    write(tmp_path, ".dockerenv", "")

    assert _probe(tmp_path) == Virtualization(vm="qemu", container="docker")


def test_a_policy_that_allows_everything_lets_any_environment_run() -> None:
    ensure_virtualization_allowed(
        Virtualization(vm="kvm", container="docker"), allow_vm=True, allow_container=True
    )


def test_a_vm_is_refused_when_the_license_forbids_vms() -> None:
    with pytest.raises(VirtualMachineNotAllowedError) as caught:
        ensure_virtualization_allowed(
            Virtualization(vm="vmware"), allow_vm=False, allow_container=True
        )

    assert caught.value.code == "VM_NOT_ALLOWED"
    assert "vmware" in caught.value.message


def test_a_container_is_refused_when_the_license_forbids_containers() -> None:
    with pytest.raises(VirtualMachineNotAllowedError, match="container"):
        ensure_virtualization_allowed(
            Virtualization(container="docker"), allow_vm=True, allow_container=False
        )


def test_a_physical_machine_passes_the_strictest_policy() -> None:
    ensure_virtualization_allowed(Virtualization(), allow_vm=False, allow_container=False)
