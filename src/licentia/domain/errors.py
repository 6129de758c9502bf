"""The domain's one error tree.

Every error carries a stable machine ``code`` (shared with the client SDK and
documented in docs/api.md) and a human message. The HTTP API maps each class to a
status in exactly one place (``licentia.server.api.problems``), the CLI maps them
to exit codes in ``licentia.cli.output``.

    LicentiaError
    ├── ValidationError          input that breaks a rule (field named)
    │   ├── DateOutOfRangeError      a date beyond the range Licentia supports
    │   └── IdentifierInvalidError   an identifier with invisible or control characters
    ├── AuthenticationError      no or bad credentials
    │   ├── LoginThrottledError  too many failed logins lately (retry later)
    │   │   └── LoginLockedError     this account is locked for a while (backoff)
    │   ├── LinkInvalidError     an e-mailed link unknown, used or expired
    │   ├── CodeRequiredError    the password was right; the authenticator's code is due
    │   └── CodeInvalidError     a wrong, used or stale authenticator or recovery code
    ├── PermissionDeniedError    credentials lack the scope
    ├── NotFoundError            no such object for this vendor
    ├── ConflictError            the request clashes with current state
    │   ├── AlreadyExistsError
    │   └── IllegalTransitionError
    ├── ServerBusyError          a bounded resource is in use; try again shortly
    ├── RateLimitedError         too many requests from one address or credential (retry later)
    ├── ConfigurationError       the operator's set-up is unsafe or incomplete
    └── MailNotSentError         the mail server did not take a message (try again)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class LicentiaError(Exception):
    """Base of every error Licentia raises on purpose."""

    code = "ERROR"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class ValidationError(LicentiaError):
    code = "VALIDATION_FAILED"

    def __init__(
        self, message: str, *, field: str | None = None, code: str | None = None, **details: Any
    ) -> None:
        if field is not None:
            details["field"] = field
        super().__init__(message, code=code, **details)
        self.field = field


class DateOutOfRangeError(ValidationError):
    code = "DATE_OUT_OF_RANGE"


class IdentifierInvalidError(ValidationError):
    code = "IDENTIFIER_INVALID"


class AuthenticationError(LicentiaError):
    code = "UNAUTHENTICATED"


class LoginThrottledError(AuthenticationError):
    """Too many failed logins from one address lately."""

    code = "LOGIN_THROTTLED"
    reason = "too many failed logins"

    def __init__(self, retry_after_seconds: int, **details: Any) -> None:
        minutes = max(1, -(-retry_after_seconds // 60))
        super().__init__(
            f"{self.reason}; try again in {minutes} minute{'s' if minutes > 1 else ''}",
            retry_after_seconds=retry_after_seconds,
            **details,
        )
        self.retry_after_seconds = retry_after_seconds


class LoginLockedError(LoginThrottledError):
    """An account locked after failed logins, until ``locked_until`` (an RFC 3339
    time): even the right password is refused until then, or until an admin unlocks."""

    code = "LOGIN_LOCKED"
    reason = "this account is locked after too many failed logins"


class LinkInvalidError(AuthenticationError):
    code = "LINK_INVALID"


class CodeRequiredError(AuthenticationError):
    """The password matched and the user has TOTP on: the login needs the code.
    ``user_id`` is for the server's next step only (never in ``details``: the API
    answers with the details)."""

    code = "TOTP_REQUIRED"

    def __init__(self, message: str, *, user_id: str) -> None:
        super().__init__(message)
        self.user_id = user_id


class CodeInvalidError(AuthenticationError):
    code = "TOTP_INVALID"


class PermissionDeniedError(LicentiaError):
    code = "FORBIDDEN"


class NotFoundError(LicentiaError):
    code = "NOT_FOUND"

    def __init__(self, kind: str, ident: object, *, code: str | None = None) -> None:
        super().__init__(f"{kind} {ident} not found", code=code, kind=kind)


class ConflictError(LicentiaError):
    code = "CONFLICT"


class AlreadyExistsError(ConflictError):
    code = "ALREADY_EXISTS"


class IllegalTransitionError(ConflictError):
    code = "ILLEGAL_TRANSITION"

    def __init__(self, action: str, state: str) -> None:
        super().__init__(
            f"cannot {action} a license that is {state}", action=action, current_state=state
        )


class ServerBusyError(LicentiaError):
    code = "SERVER_BUSY"


class RateLimitedError(LicentiaError):
    """Too many requests of one family (``family``: ``login``, ``api``…) from one client
    address or with one credential; ``retry_after_seconds`` says when the next is counted."""

    code = "RATE_LIMITED"

    def __init__(self, family: str, retry_after_seconds: int) -> None:
        seconds = max(1, retry_after_seconds)
        super().__init__(
            f"the rate limit '{family}' is reached for this address or credential; "
            f"try again in {seconds} second{'s' if seconds > 1 else ''}",
            family=family,
            retry_after_seconds=seconds,
        )
        self.retry_after_seconds = seconds


class ConfigurationError(LicentiaError):
    code = "CONFIGURATION_ERROR"


class MailNotSentError(LicentiaError):
    code = "MAIL_NOT_SENT"


def field_path(parts: Iterable[str | int]) -> str:
    """The one way every error names a field: keys joined by dots, list positions in
    brackets (``lines[0].sku``, ``options.validity.end_date``)."""
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
