"""Licentia client SDK: verify and use licenses on the device, offline first.

Needs only ``cryptography``, ``httpx`` and ``joserfc``; it never imports the server.
Start with :class:`LicenseClient`; docs/sdk.md walks through a complete example.
"""

from licentia.client._client import ClientStatus, LicenseClient, SyncResult
from licentia.client._clock import (
    DEFAULT_ROLLBACK_TOLERANCE,
    TimeHighWaterMark,
    TrustedClock,
    system_clock,
)
from licentia.client._entitlements import Entitlement
from licentia.client._exceptions import (
    ClockRollbackError,
    DeviceBlacklistedError,
    DeviceFlaggedError,
    DeviceTrustError,
    FeatureMissingError,
    FingerprintMismatchError,
    LeaseExpiredError,
    LicenseExpiredError,
    LicenseUnusableError,
    LicentiaClientError,
    MaintenanceEndedError,
    NetworkError,
    NotActivatedError,
    ServerError,
    SignatureInvalidError,
    StoreTamperedError,
    TicketRejectedError,
    TransferLimitReachedError,
    TransportError,
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
from licentia.client._virtualization import (
    SystemVirtualizationProbe,
    Virtualization,
    VirtualizationProbe,
    ensure_virtualization_allowed,
)

__all__ = [
    "DEFAULT_ROLLBACK_TOLERANCE",
    "ClientStatus",
    "ClockRollbackError",
    "DeviceBlacklistedError",
    "DeviceFlaggedError",
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
    "NotActivatedError",
    "ServerError",
    "SignatureInvalidError",
    "StoreTamperedError",
    "SyncResult",
    "SystemFactorSource",
    "SystemVirtualizationProbe",
    "TicketRejectedError",
    "TimeHighWaterMark",
    "Tolerance",
    "TransferLimitReachedError",
    "TransportError",
    "TrustedClock",
    "UpdateReplayedError",
    "VirtualMachineNotAllowedError",
    "Virtualization",
    "VirtualizationProbe",
    "WrongDeviceError",
    "collect_fingerprint",
    "ensure_fingerprint_matches",
    "ensure_virtualization_allowed",
    "hash_factors",
    "match_fingerprint",
    "store_directory",
    "system_clock",
]
