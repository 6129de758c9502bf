"""The shapes of secrets, cut out of every log line (docs/security.md#what-is-never-logged).

Code that logs is careful not to pass a secret, but a secret can still reach a line
by a way nobody planned: an exception's message quoting a value, a library logging a
URL with its password, an address in a mail's log line. So every line, whoever wrote
it, passes :func:`redact` last: the credentials this server issues (by their
prefixes), tickets' codes, bearer tokens, compact JWS, the tokens of mailed links,
passwords in URLs, and e-mail addresses (their domain is kept) are replaced.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    # API keys, cloud credentials and device tokens: prefix and public id kept.
    (re.compile(r"\b(lic|lcc|lcd)_([0-9a-f]{12})_[A-Za-z0-9_-]+"), r"\1_\2_[redacted]"),
    # Session tokens of staff and customer users.
    (re.compile(r"\b(lis|lcu)_[A-Za-z0-9_-]{8,}"), r"\1_[redacted]"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
    (re.compile(r"\b(Bearer|bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]+"), r"\1\2[redacted]"),
    # A compact JWS or JWT (a seat token, a device message): header.payload.signature.
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[jws]"),
    # A ticket's code, as printed or typed in lower case.
    (re.compile(r"(?i)\b[0-9A-HJKMNP-TV-Z]{5}(?:-[0-9A-HJKMNP-TV-Z]{5}){4}\b"), "[ticket]"),
    # The token of a mailed link (invitation, password reset) at the end of its path.
    (
        re.compile(
            r"(/console/password|/console/reset/[^/?#\s\"']+|/portal/[^/?#\s\"']+/"
            r"(?:welcome|reset))/[^/?#\s\"']+"
        ),
        r"\1/[token]",
    ),
    # user:password@ in a URL (a database or mail server's address).
    (re.compile(r"(://[^:/@\s]+:)[^@/\s]+@"), r"\1[redacted]@"),
    (re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b"), r"…@\1"),
)
# Fields whose value is a secret whatever it looks like.
_SECRET_FIELDS = ("password", "secret", "token", "credential", "api_key", "authorization", "cookie")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """``text`` with every known shape of secret replaced."""
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return text


def secret_field(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_FIELDS)


def redact_fields(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """A structlog processor: every value of the line redacted, a secret field's whole."""
    return {key: _redacted(key, value) for key, value in event.items()}


def _redacted(key: str, value: Any) -> Any:
    if secret_field(key) and value is not None:
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redacted(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(key, item) for item in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))
