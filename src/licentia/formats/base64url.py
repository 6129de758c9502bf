"""Base64url without padding (RFC 7515 section 2), as JWS and JWK use it.

Written on :mod:`binascii` rather than :mod:`base64`: an application's first license
check imports this, and :mod:`base64` (with :mod:`struct`) cost more to import than the
two translations below.
"""

from __future__ import annotations

import binascii

__all__ = ["decode", "encode"]

_TO_BASE64URL = bytes.maketrans(b"+/", b"-_")
_FROM_BASE64URL = bytes.maketrans(b"-_", b"+/")


def encode(data: bytes) -> str:
    """``data`` in base64url, without ``=`` padding."""
    return binascii.b2a_base64(data, newline=False).translate(_TO_BASE64URL).rstrip(b"=").decode()


def decode(text: str) -> bytes:
    """The bytes of base64url ``text``, padded or not. Like
    :func:`base64.urlsafe_b64decode`, symbols outside the alphabet are skipped; raises
    binascii.Error (a ValueError) for a wrong length."""
    padded = (text + "=" * (-len(text) % 4)).encode("ascii")
    return binascii.a2b_base64(padded.translate(_FROM_BASE64URL))
