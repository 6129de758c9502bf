"""The SDK's error tree: stable codes and messages a user can act on."""

from __future__ import annotations

import pytest

from licentia.cli.output import EXIT_SERVER_REFUSED, as_command_error
from licentia.client import (
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
    RateLimitedError,
    ServerError,
    SignatureInvalidError,
    StoreTamperedError,
    TicketCodeInvalidError,
    TicketRejectedError,
    TransferLimitReachedError,
    TransportError,
    UpdateReplayedError,
    VirtualMachineNotAllowedError,
    WrongDeviceError,
)
from licentia.client._exceptions import error_from_problem
from licentia.client._retry import is_transient

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
    WrongDeviceError: ("WRONG_DEVICE", DeviceTrustError),
    UpdateReplayedError: ("UPDATE_REPLAYED", DeviceTrustError),
    NetworkError: ("NETWORK_ERROR", TransportError),
}
SERVER_CODES: dict[type[ServerError], str] = {
    TicketRejectedError: "TICKET_REJECTED",
    TicketCodeInvalidError: "TICKET_CODE_INVALID",
    DeviceBlacklistedError: "DEVICE_BLACKLISTED",
    DeviceFlaggedError: "DEVICE_FLAGGED",
    TransferLimitReachedError: "TRANSFER_LIMIT_REACHED",
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
    codes = [code for code, _ in CODES.values()] + [ServerError.code, *SERVER_CODES.values()]

    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("server_code", "expected"),
    [
        ("TICKET_CODE_INVALID", TicketCodeInvalidError),
        ("TICKET_NOT_FOUND", TicketRejectedError),
        ("NO_LICENSE_AVAILABLE", TicketRejectedError),
        ("WRONG_DELIVERY", TicketRejectedError),
        ("DEVICE_BLACKLISTED", DeviceBlacklistedError),
        ("DEVICE_FLAGGED", DeviceFlaggedError),
        ("TRANSFER_LIMIT_REACHED", TransferLimitReachedError),
        ("REQUEST_EXPIRED", ServerError),
        ("SIGNATURE_INVALID", ServerError),  # the device's message, not the vendor's files
        ("SOMETHING_NEWER", ServerError),
    ],
)
def test_a_server_refusal_becomes_the_class_that_names_it(
    server_code: str, expected: type[ServerError]
) -> None:
    problem = {"code": server_code, "detail": "The server says why.", "status": 409}

    error = error_from_problem(409, problem)

    assert type(error) is expected
    assert (error.server_code, error.status, error.message) == (
        server_code,
        409,
        "The server says why.",
    )
    assert error.code == SERVER_CODES.get(expected, "SERVER_ERROR")


@pytest.mark.parametrize(
    ("server_code", "expected"),
    [
        ("FINGERPRINT_MISMATCH", FingerprintMismatchError),
        ("VM_NOT_ALLOWED", VirtualMachineNotAllowedError),
    ],
)
def test_a_server_check_of_the_device_is_the_same_error_as_the_offline_check(
    server_code: str, expected: type[LicentiaClientError]
) -> None:
    error = error_from_problem(403, {"code": server_code, "detail": "Refused by the server."})

    assert type(error) is expected
    assert (error.code, error.server_code, error.status) == (server_code, server_code, 403)


def test_an_answer_without_a_problem_body_still_says_what_happened() -> None:
    error = error_from_problem(502, None)

    assert type(error) is ServerError
    assert (error.status, error.server_code) == (502, None)
    assert "HTTP 502" in error.message


@pytest.mark.parametrize("error", list(SERVER_CODES), ids=lambda v: v.__name__)
def test_server_refusals_are_server_errors_with_their_own_code(error: type[ServerError]) -> None:
    raised = error("Refused.", status=409, server_code="X")

    assert isinstance(raised, ServerError)
    assert raised.code == error.code == SERVER_CODES[error]


def test_a_rate_limit_is_a_typed_error_saying_when_to_try_again() -> None:
    problem = {
        "code": "RATE_LIMITED",
        "detail": "the rate limit 'login' is reached for this address or credential; "
        "try again in 42 seconds",
        "family": "login",
        "retry_after_seconds": 42,
    }
    error = error_from_problem(429, problem)
    assert isinstance(error, RateLimitedError) and isinstance(error, ServerError)
    assert (error.code, error.server_code, error.status) == ("RATE_LIMITED", "RATE_LIMITED", 429)
    assert error.retry_after == 42
    assert is_transient(error)  # the SDK's own retries wait and try again
    # The end user's commands print the server's sentence, with the wait, and exit 13.
    command = as_command_error(error)
    assert (command.code, command.exit_code) == ("RATE_LIMITED", EXIT_SERVER_REFUSED)
    assert "try again in 42 seconds" in command.message
    assert error_from_problem(429, {"code": "RATE_LIMITED"}).retry_after is None  # type: ignore[attr-defined]
