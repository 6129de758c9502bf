"""E-mail addresses as people type them: one rule for every address Licentia keeps or
sends to (customers, customer users, invitations, ticket mail, password resets)."""

from __future__ import annotations

import re

from licentia.domain.errors import ValidationError

# One address, as a person types it: something@domain.tld, no spaces, no list. The
# spaces are ``str.isspace``'s, spelled out, so that the same pattern means the same in
# JSON Schema (ECMA-262's \s differs from Python's): the API's document declares
# ``PATTERN``, the address with the spaces ``check_address`` strips around it.
_SPACE = "".join(f"\\u{point:04X}" for point in range(0x3001) if chr(point).isspace())
_PART = f"[^@{_SPACE},;<>]+"
_CORE = f"{_PART}@{_PART}\\.{_PART}"
PATTERN = f"^[{_SPACE}]*{_CORE}[{_SPACE}]*$"
_ADDRESS = re.compile(_CORE)
_LONGEST = 320  # RFC 3696's 64 + 1 + 255


def check_address(address: str, field: str = "to") -> str:
    """The address without surrounding spaces; ValidationError (``EMAIL_INVALID``)
    naming ``field`` unless it is one plausible e-mail address."""
    address = address.strip()
    if len(address) > _LONGEST or not _ADDRESS.fullmatch(address):
        raise ValidationError(
            f"{address!r} is not an e-mail address", field=field, code="EMAIL_INVALID"
        )
    return address
