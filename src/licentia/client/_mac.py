"""HMAC-SHA256 for the MACs of a cold start, from the standard :mod:`hmac` module.

Opening a client computes several HMACs of short messages: one per fingerprint
factor, one for the key file, one for the state. :class:`HmacSha256` keys an HMAC
once and copies it per message (what :meth:`hmac.HMAC.copy` is for), so a key that
MACs several messages (the fingerprint salt) pays for its padding once. Comparing MACs
stays :func:`hmac.compare_digest`'s business.
"""

from __future__ import annotations

import hmac

__all__ = ["HmacSha256", "hmac_sha256"]


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The HMAC-SHA256 of ``message`` under ``key``."""
    return hmac.new(key, message, "sha256").digest()


class HmacSha256:
    """HMAC-SHA256 under one ``key``, for any number of messages."""

    __slots__ = ("_keyed",)

    def __init__(self, key: bytes) -> None:
        self._keyed = hmac.new(key, digestmod="sha256")

    def hexdigest(self, message: bytes) -> str:
        mac = self._keyed.copy()
        mac.update(message)
        return mac.hexdigest()
