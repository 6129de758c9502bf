"""Every error the client SDK raises on purpose.

Each class carries a stable machine ``code`` (the same vocabulary as the server's
problem+json ``code`` and the CLI) and a message the end user can act on. Catch a
branch of the tree to handle a family at once, or a leaf for one condition::

    LicentiaClientError                    code, message
    ├── LicenseUnusableError               the license does not allow this use now
    │   ├── NotActivatedError              NOT_ACTIVATED
    │   ├── LicenseExpiredError            EXPIRED
    │   ├── LeaseExpiredError              LEASE_EXPIRED
    │   ├── FeatureMissingError            FEATURE_MISSING
    │   └── MaintenanceEndedError          MAINTENANCE_ENDED
    ├── DeviceTrustError                   this device or its store cannot be trusted offline
    │   ├── FingerprintMismatchError       FINGERPRINT_MISMATCH
    │   ├── VirtualMachineNotAllowedError  VM_NOT_ALLOWED
    │   ├── ClockRollbackError             CLOCK_ROLLBACK
    │   ├── StoreTamperedError             STORE_TAMPERED
    │   └── SignatureInvalidError          SIGNATURE_INVALID
    └── TransportError                     talking to License Central failed
        ├── NetworkError                   NETWORK_ERROR
        └── ServerError                    SERVER_ERROR (+ status, server_code)
"""

from __future__ import annotations

__all__ = [
    "ClockRollbackError",
    "DeviceTrustError",
    "FeatureMissingError",
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
    "TransportError",
    "VirtualMachineNotAllowedError",
]


class LicentiaClientError(Exception):
    """Base of the tree: a stable machine ``code`` and a human ``message``."""

    code: str = "CLIENT_ERROR"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _CodedError(LicentiaClientError):
    # Leaves fix their code in the class, so `SomeError.code` is usable without an
    # instance (for mapping tables) and callers only pass a more specific message.
    default_message = "The license check failed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(self.code, message or self.default_message)


class LicenseUnusableError(_CodedError):
    """The license exists (or should) but does not allow this use right now."""


class NotActivatedError(LicenseUnusableError):
    code = "NOT_ACTIVATED"
    default_message = (
        "This product is not activated on this device. "
        "Enter your ticket in the activation wizard to activate it."
    )


class LicenseExpiredError(LicenseUnusableError):
    code = "EXPIRED"
    default_message = "Your license has expired. Contact your vendor to renew it."


class LeaseExpiredError(LicenseUnusableError):
    code = "LEASE_EXPIRED"
    default_message = (
        "The offline lease of your license has run out. "
        "Connect this device to the internet once so the license can sync."
    )


class FeatureMissingError(LicenseUnusableError):
    code = "FEATURE_MISSING"
    default_message = "Your license does not include this feature. Contact your vendor to add it."


class MaintenanceEndedError(LicenseUnusableError):
    code = "MAINTENANCE_ENDED"
    default_message = (
        "This version was released after your maintenance period ended. "
        "Renew maintenance or keep using an earlier version."
    )


class DeviceTrustError(_CodedError):
    """The device, its clock or its local store cannot be trusted for offline use."""


class FingerprintMismatchError(DeviceTrustError):
    code = "FINGERPRINT_MISMATCH"
    default_message = (
        "This device's hardware no longer matches the device the license was activated on. "
        "Return the license from the old device, or ask your vendor to reset the activation."
    )


class VirtualMachineNotAllowedError(DeviceTrustError):
    code = "VM_NOT_ALLOWED"
    default_message = (
        "This license may not run in a virtual machine or container. "
        "Run the software on a physical machine, or ask your vendor for a license that allows it."
    )


class ClockRollbackError(DeviceTrustError):
    code = "CLOCK_ROLLBACK"
    default_message = (
        "The system clock is behind the last trusted time. "
        "Correct the date and time, then connect to the internet so the license can sync."
    )


class StoreTamperedError(DeviceTrustError):
    code = "STORE_TAMPERED"
    default_message = (
        "The local license store was modified or restored from an older copy. "
        "Connect to the internet so the license can sync, or contact your vendor."
    )


class SignatureInvalidError(DeviceTrustError):
    code = "SIGNATURE_INVALID"
    default_message = (
        "A license file is not signed by your vendor, or it was modified. "
        "Download the license again from the License Portal."
    )


class TransportError(LicentiaClientError):
    """Talking to License Central failed; offline licenses keep working meanwhile."""


class NetworkError(TransportError):
    """License Central could not be reached (DNS, connection, TLS, timeout)."""

    code = "NETWORK_ERROR"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            self.code,
            message
            or "License Central could not be reached. Check the internet connection and retry.",
        )


class ServerError(TransportError):
    """License Central answered with an error (RFC 9457 problem+json).

    ``server_code`` is the problem's own ``code`` (e.g. ``SEAT_LIMIT_REACHED``) so a
    caller can react to it; ``status`` is the HTTP status.
    """

    code = "SERVER_ERROR"

    def __init__(self, message: str, *, status: int, server_code: str | None = None) -> None:
        super().__init__(self.code, message)
        self.status = status
        self.server_code = server_code
