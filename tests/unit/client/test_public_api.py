"""The public surface of licentia.client, pinned, and its dependency boundary."""

from __future__ import annotations

import inspect
import subprocess
import sys

import licentia.client

PUBLIC_NAMES = {
    "DEFAULT_ROLLBACK_TOLERANCE",
    "AccessToken",
    "BorrowedSeat",
    "ChurnLimitReachedError",
    "ClientStatus",
    "ClockRollbackError",
    "CloudClient",
    "CloudCredential",
    "Consumption",
    "CredentialInvalidError",
    "CredentialResetError",
    "DeviceBlacklistedError",
    "DeviceDeregisteredError",
    "DeviceFlaggedError",
    "DeviceLimitReachedError",
    "DeviceStore",
    "DeviceTrustError",
    "Entitlement",
    "FactorSource",
    "FeatureMissingError",
    "Fingerprint",
    "FingerprintMatch",
    "FingerprintMismatchError",
    "LeaseExpiredError",
    "LicenseClient",
    "LicenseExpiredError",
    "LicenseUnusableError",
    "LicentiaClientError",
    "MaintenanceEndedError",
    "NetworkError",
    "NoSeatAvailableError",
    "NotActivatedError",
    "RateLimitedError",
    "RetryPolicy",
    "Seat",
    "SeatLostError",
    "ServerError",
    "SignatureInvalidError",
    "StoreTamperedError",
    "SyncResult",
    "SystemFactorSource",
    "SystemVirtualizationProbe",
    "TicketCodeInvalidError",
    "TicketRejectedError",
    "TimeHighWaterMark",
    "Tolerance",
    "TransferLimitReachedError",
    "TransportError",
    "TrustedClock",
    "UnitsExhaustedError",
    "UpdateReplayedError",
    "VirtualMachineNotAllowedError",
    "Virtualization",
    "VirtualizationProbe",
    "WrongDeviceError",
    "collect_fingerprint",
    "ensure_fingerprint_matches",
    "ensure_virtualization_allowed",
    "fetch_jwks",
    "hash_factors",
    "match_fingerprint",
    "normalize_ticket_code",
    "redeem_cloud_ticket",
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


LICENSE_CLIENT_METHODS = {
    "activate",
    "close",
    "create_offline_request",
    "create_return_file",
    "device_id",
    "import_update",
    "licenses",
    "require",
    "return_license",
    "start_auto_update",
    "status",
    "stop_auto_update",
    "sync",
    "vendor",
}


def test_the_license_client_offers_exactly_these_operations() -> None:
    public = {name for name in dir(licentia.client.LicenseClient) if not name.startswith("_")}

    assert public == LICENSE_CLIENT_METHODS - {"vendor"}  # vendor is set per instance


def test_the_license_client_takes_these_arguments() -> None:
    parameters = inspect.signature(licentia.client.LicenseClient).parameters

    assert list(parameters) == [
        "server_url",
        "vendor",
        "public_keys",
        "store_dir",
        "factor_source",
        "virtualization_probe",
        "local_clock",
        "transport",
        "timeout",
    ]
    assert [p.name for p in parameters.values() if p.kind is p.KEYWORD_ONLY] == list(parameters)[3:]


def test_the_client_imports_nothing_from_the_server_side() -> None:
    forbidden = ("licentia.server", "licentia.domain", "pydantic", "sqlalchemy", "fastapi")
    probe = "import sys, licentia.client; print(' '.join(sys.modules))"

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    imported = result.stdout.split()
    assert "licentia.client" in imported
    assert [m for m in imported if m.startswith(forbidden)] == []
