"""SHA-256, from cryptography's OpenSSL binding.

:mod:`hashlib` loads a second copy of OpenSSL's digests (``_hashlib``, with
``_blake2``), which an application's first license check paid for at start-up while
cryptography's own binding, loaded for the signatures anyway, has them too.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.hashes import SHA256, Hash

__all__ = ["sha256"]

_SHA256 = SHA256()


def sha256(data: bytes) -> bytes:
    """The SHA-256 digest of ``data``."""
    digest = Hash(_SHA256)
    digest.update(data)
    return digest.finalize()
