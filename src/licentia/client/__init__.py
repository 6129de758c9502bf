"""Licentia client SDK: verify and use licenses on the device, offline first.

Needs only ``cryptography``, ``httpx`` and ``joserfc``; it never imports the server.
Start with :class:`LicenseClient`; docs/sdk.md walks through a complete example.
Cloud containers, seats and counters: :class:`CloudClient` and docs/cloud.md.

A protected application imports this at every start, so what an offline license
check does not need is imported on first use: the cloud client's names below
(``_LAZY``) through ``__getattr__``, httpx on the first online call, joserfc on the
first secret opened.
"""

from typing import TYPE_CHECKING, Any

from licentia.client._client import ClientStatus, LicenseClient, SyncResult
from licentia.client._clock import (
    DEFAULT_ROLLBACK_TOLERANCE,
    TimeHighWaterMark,
    TrustedClock,
    system_clock,
)
from licentia.client._entitlements import Entitlement
from licentia.client._exceptions import (
    ChurnLimitReachedError,
    ClockRollbackError,
    CredentialInvalidError,
    CredentialResetError,
    DeviceBlacklistedError,
    DeviceDeregisteredError,
    DeviceFlaggedError,
    DeviceLimitReachedError,
    DeviceTrustError,
    FeatureMissingError,
    FingerprintMismatchError,
    LeaseExpiredError,
    LicenseExpiredError,
    LicenseUnusableError,
    LicentiaClientError,
    MaintenanceEndedError,
    NetworkError,
    NoSeatAvailableError,
    NotActivatedError,
    RateLimitedError,
    SeatLostError,
    ServerError,
    SignatureInvalidError,
    StoreTamperedError,
    TicketCodeInvalidError,
    TicketRejectedError,
    TransferLimitReachedError,
    TransportError,
    UnitsExhaustedError,
    UpdateReplayedError,
    VirtualMachineNotAllowedError,
    WrongDeviceError,
)
from licentia.client._fingerprint import (
    FactorSource,
    Fingerprint,
    FingerprintMatch,
    SystemFactorSource,
    Tolerance,
    collect_fingerprint,
    ensure_fingerprint_matches,
    hash_factors,
    match_fingerprint,
)
from licentia.client._store import DeviceStore, store_directory
from licentia.client._tickets import normalize_ticket_code
from licentia.client._virtualization import (
    SystemVirtualizationProbe,
    Virtualization,
    VirtualizationProbe,
    ensure_virtualization_allowed,
)

if TYPE_CHECKING:
    from licentia.client._borrow import BorrowedSeat
    from licentia.client._cloud import AccessToken, CloudClient, Consumption
    from licentia.client._cloud_api import fetch_jwks
    from licentia.client._licred import CloudCredential, redeem_cloud_ticket
    from licentia.client._retry import RetryPolicy
    from licentia.client._seat import Seat

_LAZY = {
    "AccessToken": "licentia.client._cloud",
    "BorrowedSeat": "licentia.client._borrow",
    "CloudClient": "licentia.client._cloud",
    "CloudCredential": "licentia.client._licred",
    "Consumption": "licentia.client._cloud",
    "RetryPolicy": "licentia.client._retry",
    "Seat": "licentia.client._seat",
    "fetch_jwks": "licentia.client._cloud_api",
    "redeem_cloud_ticket": "licentia.client._licred",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'licentia.client' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
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
]
