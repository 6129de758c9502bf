"""HMAC-SHA256 for the MACs of a cold start, from cryptography's OpenSSL binding.

Opening a client computes several HMACs of short messages: one per fingerprint
factor, one for the key file, one for the state. :class:`HmacSha256` keys an HMAC
once and copies it per message, so a key that MACs several messages (the fingerprint
salt) pays for its padding once. cryptography rather than :mod:`hmac`: that module
loads :mod:`hashlib` and a second copy of OpenSSL's digests at start-up (and so does
cryptography's ``constant_time``: MACs are compared by :meth:`HMAC.verify`).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.hmac import HMAC

__all__ = ["HmacSha256", "hmac_sha256", "hmac_sha256_matches"]

_SHA256 = SHA256()


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The HMAC-SHA256 of ``message`` under ``key``."""
    mac = HMAC(key, _SHA256)
    mac.update(message)
    return mac.finalize()


def hmac_sha256_matches(key: bytes, message: bytes, hex_mac: bytes) -> bool:
    """Whether ``hex_mac`` is the HMAC-SHA256 of ``message`` under ``key`` in hex,
    compared in constant time."""
    try:
        claimed = bytes.fromhex(hex_mac.decode("ascii"))
    except ValueError:  # UnicodeDecodeError is one
        return False
    if claimed.hex().encode() != hex_mac:  # the canonical form only: lower case, no spaces
        return False
    mac = HMAC(key, _SHA256)
    mac.update(message)
    try:
        mac.verify(claimed)
    except InvalidSignature:
        return False
    return True


class HmacSha256:
    """HMAC-SHA256 under one ``key``, for any number of messages."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = HMAC(key, _SHA256)

    def hexdigest(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.finalize().hex()
