"""The public surface of licentia.client, pinned, and its dependency boundary."""

from __future__ import annotations

import subprocess
import sys

import licentia.client

PUBLIC_NAMES = {
    "DEFAULT_ROLLBACK_TOLERANCE",
    "ClockRollbackError",
    "DeviceStore",
    "DeviceTrustError",
    "FactorSource",
    "FeatureMissingError",
    "Fingerprint",
    "FingerprintMatch",
    "FingerprintMismatchError",
    "LeaseExpiredError",
    "LicenseExpiredError",
    "LicenseUnusableError",
    "LicentiaClientError",
    "MaintenanceEndedError",
    "NetworkError",
    "NotActivatedError",
    "ServerError",
    "SignatureInvalidError",
    "StoreTamperedError",
    "SystemFactorSource",
    "SystemVirtualizationProbe",
    "TimeHighWaterMark",
    "Tolerance",
    "TransportError",
    "TrustedClock",
    "VirtualMachineNotAllowedError",
    "Virtualization",
    "VirtualizationProbe",
    "collect_fingerprint",
    "ensure_fingerprint_matches",
    "ensure_virtualization_allowed",
    "hash_factors",
    "match_fingerprint",
    "store_directory",
    "system_clock",
}


def _isort_key(name: str) -> tuple[int, str]:
    # Constants, then classes, then functions — the order ruff's RUF022 keeps.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_the_public_names_are_exactly_these() -> None:
    assert set(licentia.client.__all__) == PUBLIC_NAMES
    assert all(hasattr(licentia.client, name) for name in PUBLIC_NAMES)


def test_all_is_sorted() -> None:
    assert licentia.client.__all__ == sorted(licentia.client.__all__, key=_isort_key)


def test_the_client_imports_nothing_from_the_server_side() -> None:
    forbidden = ("licentia.server", "licentia.domain", "pydantic", "sqlalchemy", "fastapi")
    probe = "import sys, licentia.client; print(' '.join(sys.modules))"

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    imported = result.stdout.split()
    assert "licentia.client" in imported
    assert [m for m in imported if m.startswith(forbidden)] == []
