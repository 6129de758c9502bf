"""E-mail addresses as people type them: one rule for every address Licentia keeps or
sends to (customers, customer users, invitations, ticket mail, password resets)."""

from __future__ import annotations

import re

from licentia.domain.errors import ValidationError

# One address, as a person types it: something@domain.tld, no spaces, no list.
_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_LONGEST = 320  # RFC 3696's 64 + 1 + 255


def check_address(address: str, field: str = "to") -> str:
    """The address without surrounding spaces; ValidationError (``EMAIL_INVALID``)
    naming ``field`` unless it is one plausible e-mail address."""
    address = address.strip()
    if len(address) > _LONGEST or not _ADDRESS.match(address):
        raise ValidationError(
            f"{address!r} is not an e-mail address", field=field, code="EMAIL_INVALID"
        )
    return address
