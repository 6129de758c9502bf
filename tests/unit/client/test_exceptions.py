"""The SDK's error tree: stable codes and messages a user can act on."""

from __future__ import annotations

import pytest

from licentia.client import (
    ClockRollbackError,
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
    TransportError,
    VirtualMachineNotAllowedError,
)

CODES: dict[type[LicentiaClientError], tuple[str, type[LicentiaClientError]]] = {
    NotActivatedError: ("NOT_ACTIVATED", LicenseUnusableError),
    LicenseExpiredError: ("EXPIRED", LicenseUnusableError),
    LeaseExpiredError: ("LEASE_EXPIRED", LicenseUnusableError),
    FeatureMissingError: ("FEATURE_MISSING", LicenseUnusableError),
    MaintenanceEndedError: ("MAINTENANCE_ENDED", LicenseUnusableError),
    FingerprintMismatchError: ("FINGERPRINT_MISMATCH", DeviceTrustError),
    VirtualMachineNotAllowedError: ("VM_NOT_ALLOWED", DeviceTrustError),
    ClockRollbackError: ("CLOCK_ROLLBACK", DeviceTrustError),
    StoreTamperedError: ("STORE_TAMPERED", DeviceTrustError),
    SignatureInvalidError: ("SIGNATURE_INVALID", DeviceTrustError),
    NetworkError: ("NETWORK_ERROR", TransportError),
}


@pytest.mark.parametrize(("error", "expected"), CODES.items(), ids=lambda v: str(v))
def test_each_error_has_a_stable_code_and_family(
    error: type[LicentiaClientError], expected: tuple[str, type[LicentiaClientError]]
) -> None:
    code, family = expected
    raised = error()  # type: ignore[call-arg]

    assert error.code == raised.code == code
    assert isinstance(raised, family)
    assert isinstance(raised, LicentiaClientError)


@pytest.mark.parametrize("error", list(CODES), ids=lambda v: v.__name__)
def test_the_default_message_tells_the_user_what_to_do(error: type[LicentiaClientError]) -> None:
    message = error().message  # type: ignore[call-arg]

    assert message.endswith(".")
    assert len(message.split(". ")) >= 2, "a cause and a next step"
    assert str(error()) == message  # type: ignore[call-arg]


def test_a_specific_message_replaces_the_default_but_keeps_the_code() -> None:
    error = FeatureMissingError("Your license does not include 'export-pdf'.")

    assert error.message == "Your license does not include 'export-pdf'."
    assert error.code == "FEATURE_MISSING"


def test_a_server_error_carries_the_servers_own_code() -> None:
    error = ServerError("All 5 seats are in use.", status=409, server_code="SEAT_LIMIT_REACHED")

    assert (error.code, error.status, error.server_code) == (
        "SERVER_ERROR",
        409,
        "SEAT_LIMIT_REACHED",
    )
    assert isinstance(error, TransportError)


def test_the_base_takes_any_code() -> None:
    error = LicentiaClientError("SOMETHING_NEW", "A newer server sent an unknown condition.")

    assert (error.code, error.message) == (
        "SOMETHING_NEW",
        "A newer server sent an unknown condition.",
    )


def test_every_code_is_distinct() -> None:
    codes = [code for code, _ in CODES.values()] + [ServerError.code]

    assert len(codes) == len(set(codes))
