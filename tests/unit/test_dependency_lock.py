"""requirements.lock pins what runs: every package that Licentia with its server and
dev extras needs, at the version installed here (``make install`` installs from it),
so CI on a clean clone runs, and pip-audit audits, the very releases tested here."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"


def locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned to one version: {line}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def needed(name: str, extras: frozenset[str], seen: dict[str, str]) -> None:
    """Every distribution ``name`` with ``extras`` needs, by name, with its installed
    version, into ``seen``."""
    for text in metadata.requires(name) or []:
        requirement = Requirement(text)
        environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
        if requirement.marker is not None and not any(
            requirement.marker.evaluate(environment) for environment in environments
        ):
            continue
        key = canonicalize_name(requirement.name)
        if key not in seen:
            seen[key] = metadata.version(requirement.name)
            needed(requirement.name, frozenset(requirement.extras), seen)


def test_every_package_the_server_and_the_tests_need_is_locked_at_its_installed_version():
    seen: dict[str, str] = {}
    needed("licentia", frozenset({"server", "dev", "cli"}), seen)
    pins = locked()
    assert {name: version for name, version in seen.items() if pins.get(name) != version} == {}


def test_the_lock_names_each_package_once():
    names = [
        canonicalize_name(line.partition("==")[0])
        for line in LOCK.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(names) == len(set(names))
