"""Every error the client SDK raises on purpose.

Each class carries a stable machine ``code`` (the same vocabulary as the server's
problem+json ``code`` and the CLI) and a message the end user can act on. Catch a
branch of the tree to handle a family at once, or a leaf for one condition::

    LicentiaClientError                    code, message (+ status, server_code)
    ├── LicenseUnusableError               the license does not allow this use now
    │   ├── NotActivatedError              NOT_ACTIVATED
    │   ├── LicenseExpiredError            EXPIRED
    │   ├── LeaseExpiredError              LEASE_EXPIRED
    │   ├── FeatureMissingError            FEATURE_MISSING
    │   ├── MaintenanceEndedError          MAINTENANCE_ENDED
    │   ├── NoSeatAvailableError           NO_SEAT_AVAILABLE
    │   ├── SeatLostError                  SEAT_LOST
    │   └── UnitsExhaustedError            UNITS_EXHAUSTED
    ├── DeviceTrustError                   this device or its store cannot be trusted offline
    │   ├── FingerprintMismatchError       FINGERPRINT_MISMATCH
    │   ├── VirtualMachineNotAllowedError  VM_NOT_ALLOWED
    │   ├── ClockRollbackError             CLOCK_ROLLBACK
    │   ├── StoreTamperedError             STORE_TAMPERED
    │   ├── SignatureInvalidError          SIGNATURE_INVALID
    │   ├── WrongDeviceError               WRONG_DEVICE
    │   └── UpdateReplayedError            UPDATE_REPLAYED
    └── TransportError                     talking to License Central failed
        ├── NetworkError                   NETWORK_ERROR
        └── ServerError                    SERVER_ERROR (+ status, server_code)
            ├── TicketRejectedError        TICKET_REJECTED
            │   └── TicketCodeInvalidError TICKET_CODE_INVALID (also found before sending)
            ├── DeviceBlacklistedError     DEVICE_BLACKLISTED
            ├── DeviceFlaggedError         DEVICE_FLAGGED
            ├── TransferLimitReachedError  TRANSFER_LIMIT_REACHED
            ├── ChurnLimitReachedError     CHURN_LIMIT_REACHED
            ├── CredentialInvalidError     CREDENTIAL_INVALID
            ├── CredentialResetError       CREDENTIAL_RESET
            ├── DeviceDeregisteredError    DEVICE_DEREGISTERED
            ├── DeviceLimitReachedError    DEVICE_LIMIT_REACHED
            └── RateLimitedError           RATE_LIMITED (+ retry_after, seconds)

When License Central refuses a request, :func:`error_from_problem` turns its
problem+json answer into the class above that names the same condition (the server's
``FINGERPRINT_MISMATCH`` is a :class:`FingerprintMismatchError`), or else into a
:class:`ServerError`; either way ``status`` and ``server_code`` say what the server
answered, and the message is the server's ``detail``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ChurnLimitReachedError",
    "ClockRollbackError",
    "CredentialInvalidError",
    "CredentialResetError",
    "DeviceBlacklistedError",
    "DeviceDeregisteredError",
    "DeviceFlaggedError",
    "DeviceLimitReachedError",
    "DeviceTrustError",
    "FeatureMissingError",
    "FingerprintMismatchError",
    "LeaseExpiredError",
    "LicenseExpiredError",
    "LicenseUnusableError",
    "LicentiaClientError",
    "MaintenanceEndedError",
    "NetworkError",
    "NoSeatAvailableError",
    "NotActivatedError",
    "RateLimitedError",
    "SeatLostError",
    "ServerError",
    "SignatureInvalidError",
    "StoreTamperedError",
    "TicketCodeInvalidError",
    "TicketRejectedError",
    "TransferLimitReachedError",
    "TransportError",
    "UnitsExhaustedError",
    "UpdateReplayedError",
    "VirtualMachineNotAllowedError",
    "WrongDeviceError",
    "error_from_problem",
    "fresh_copy",
]


class LicentiaClientError(Exception):
    """Base of the tree: a stable machine ``code`` and a human ``message``.

    ``status`` and ``server_code`` are set when the error is License Central's answer
    (the HTTP status and the problem's own ``code``), and None when the SDK found it.
    """

    code: str = "CLIENT_ERROR"
    status: int | None = None
    server_code: str | None = None

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


class NoSeatAvailableError(LicenseUnusableError):
    code = "NO_SEAT_AVAILABLE"
    default_message = (
        "All seats of this license are in use. "
        "Try again when a colleague closes the application, or ask your administrator for more."
    )


class SeatLostError(LicenseUnusableError):
    code = "SEAT_LOST"
    default_message = (
        "This application no longer holds its seat: it was released, given to someone else, "
        "or its lease ran out while License Central was unreachable. "
        "Save your work and open the application again to check out a new seat."
    )


class UnitsExhaustedError(LicenseUnusableError):
    code = "UNITS_EXHAUSTED"
    default_message = (
        "Your license has too few units left for this. "
        "Ask your administrator or your vendor to top up the units."
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

    @classmethod
    def unreachable(cls, url: str, error: Exception) -> NetworkError:
        """The error for a request to ``url`` that failed with ``error``: the message
        names the address tried, so a wrong server or port shows in it."""
        why = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        return cls(
            f"License Central could not be reached at {url} ({why}). "
            "Check the server's address and the internet connection, and retry."
        )


class WrongDeviceError(DeviceTrustError):
    code = "WRONG_DEVICE"
    default_message = (
        "This license file was made for another device. "
        "Create a request file on this device and use the update made for it."
    )


class UpdateReplayedError(DeviceTrustError):
    code = "UPDATE_REPLAYED"
    default_message = (
        "This update is not newer than the licenses on this device; it was imported already "
        "or replaced by a later one. Create a new request file to get a current update."
    )


class ServerError(TransportError):
    """License Central answered with an error (RFC 9457 problem+json).

    ``server_code`` is the problem's own ``code`` (e.g. ``SEAT_LIMIT_REACHED``) so a
    caller can react to it; ``status`` is the HTTP status, None when the SDK found the
    problem itself (a mistyped ticket code before sending, an answer it cannot read).
    """

    code = "SERVER_ERROR"

    def __init__(self, message: str, *, status: int | None, server_code: str | None = None) -> None:
        super().__init__(self.code, message)
        self.status = status
        self.server_code = server_code


class TicketRejectedError(ServerError):
    """The ticket cannot be activated here: mistyped, unknown, for another kind of
    delivery, or every license on it is in use (``server_code`` says which)."""

    code = "TICKET_REJECTED"


class TicketCodeInvalidError(TicketRejectedError):
    """The ticket code is mistyped: wrong length, a symbol outside the alphabet, or a
    check symbol that does not match. The SDK checks this before it sends or writes
    anything (``status`` None then); License Central's own refusal has its status."""

    code = "TICKET_CODE_INVALID"


class DeviceBlacklistedError(ServerError):
    """The vendor blocked this device; it cannot activate or sync any more."""

    code = "DEVICE_BLACKLISTED"


class DeviceFlaggedError(ServerError):
    """License Central holds this device for review (a copied store, a restored backup,
    a receipt that does not match); the vendor's support clears it."""

    code = "DEVICE_FLAGGED"


class TransferLimitReachedError(ServerError):
    """The license was moved as often as its transfer limit allows; it stays here."""

    code = "TRANSFER_LIMIT_REACHED"


class ChurnLimitReachedError(ServerError):
    """The license was activated and returned as often as its churn limit allows within
    its period; ``until`` (in ``problem``) says when it may be again."""

    code = "CHURN_LIMIT_REACHED"


class CredentialInvalidError(ServerError):
    """The container credential (the ``.licred`` file) is not valid: mistyped, or replaced
    by a reset. Ask the customer admin for the current file."""

    code = "CREDENTIAL_INVALID"


class CredentialResetError(ServerError):
    """The container's credential was reset: this device's registration stopped working.
    Register again with the new ``.licred`` file."""

    code = "CREDENTIAL_RESET"


class DeviceDeregisteredError(ServerError):
    """The customer admin deregistered this device from the cloud container."""

    code = "DEVICE_DEREGISTERED"


class DeviceLimitReachedError(ServerError):
    """The cloud container has as many registered devices as it allows; deregister one."""

    code = "DEVICE_LIMIT_REACHED"


class RateLimitedError(ServerError):
    """License Central counted too many requests from this address or with this
    credential (HTTP 429). ``retry_after`` is how many seconds to wait before the next
    is counted again (None if the server did not say); the SDK's retries count it as a
    transient failure."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, status: int | None, server_code: str | None = None) -> None:
        super().__init__(message, status=status, server_code=server_code)
        self.retry_after: int | None = None


_SERVER_ERRORS: dict[str, type[ServerError]] = {
    "TICKET_CODE_INVALID": TicketCodeInvalidError,
    "TICKET_NOT_FOUND": TicketRejectedError,
    "TICKET_REQUIRED": TicketRejectedError,
    "NO_LICENSE_AVAILABLE": TicketRejectedError,
    "WRONG_DELIVERY": TicketRejectedError,
    "DEVICE_BLACKLISTED": DeviceBlacklistedError,
    "DEVICE_FLAGGED": DeviceFlaggedError,
    "TRANSFER_LIMIT_REACHED": TransferLimitReachedError,
    "CHURN_LIMIT_REACHED": ChurnLimitReachedError,
    "CREDENTIAL_INVALID": CredentialInvalidError,
    "CREDENTIAL_RESET": CredentialResetError,
    "DEVICE_DEREGISTERED": DeviceDeregisteredError,
    "DEVICE_LIMIT_REACHED": DeviceLimitReachedError,
    "RATE_LIMITED": RateLimitedError,
}

# The server's own checks of this device, named as the SDK names its offline checks.
# Its SIGNATURE_INVALID is not here: it is about the device's message, not about the
# vendor's documents that the SDK's SignatureInvalidError speaks of.
_DEVICE_ERRORS: dict[str, type[_CodedError]] = {
    "FINGERPRINT_MISMATCH": FingerprintMismatchError,
    "VM_NOT_ALLOWED": VirtualMachineNotAllowedError,
}

# A cloud container's refusals of one use (check, seat, counter): the license exists
# but allows no more of this right now. The cloud endpoints answer these codes; an
# activation whose free licenses have all expired answers EXPIRED too.
_USE_ERRORS: dict[str, type[_CodedError]] = {
    "NOT_ACTIVATED": NotActivatedError,
    "EXPIRED": LicenseExpiredError,
    "FEATURE_MISSING": FeatureMissingError,
    "NO_SEAT_AVAILABLE": NoSeatAvailableError,
    "SEAT_LOST": SeatLostError,
    "UNITS_EXHAUSTED": UnitsExhaustedError,
}


def error_from_problem(status: int, problem: Mapping[str, Any] | None) -> LicentiaClientError:
    """The typed error for License Central's answer ``status`` with body ``problem``
    (a parsed problem+json object, or None when the body was not one)."""
    problem = problem or {}
    server_code = problem.get("code") if isinstance(problem.get("code"), str) else None
    detail = problem.get("detail")
    message = (
        str(detail)
        if isinstance(detail, str) and detail
        else f"License Central answered with HTTP {status}. Try again later or contact your vendor."
    )
    error: LicentiaClientError
    coded = _DEVICE_ERRORS.get(server_code or "") or _USE_ERRORS.get(server_code or "")
    if coded is not None:
        error = coded(message)
        error.status, error.server_code = status, server_code
        return error
    kind = _SERVER_ERRORS.get(server_code or "", ServerError)
    error = kind(message, status=status, server_code=server_code)
    if isinstance(error, RateLimitedError):
        wait = problem.get("retry_after_seconds")
        error.retry_after = wait if isinstance(wait, int) and wait >= 0 else None
    return error


def fresh_copy(error: LicentiaClientError) -> LicentiaClientError:
    """A new instance equal to ``error``, to raise a remembered error again: raising
    one object over and over would chain its tracebacks."""
    copy = type(error).__new__(type(error))
    copy.__dict__.update(error.__dict__)
    copy.args = error.args
    return copy
