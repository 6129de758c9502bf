"""The operator's master key: encrypts secrets at rest and keys ticket lookups.

Sub-keys are derived with HKDF per purpose, so a ciphertext made for one purpose
cannot be replayed as another. Ciphertexts are AES-256-GCM with a random nonce and
a version byte, leaving room to rotate the master key later.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from licentia.domain.errors import ConfigurationError
from licentia.server.settings import PLACEHOLDER_SECRETS, Settings

_VERSION = b"\x01"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# 32 random bytes have 30 distinct values on average; fewer than 16 happens by chance
# about never, and catches an all-zero key or a short pattern repeated.
_MIN_DISTINCT_BYTES = 16
_CACHED_PURPOSES = 64  # the code uses a handful of constant purposes; bound it anyway


class MasterKey:
    """Purpose-bound encryption and keyed hashing under one 32-byte secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ConfigurationError("the master key must be at least 32 bytes")
        self._secret = secret
        # Derived once per purpose: HKDF and the AES key schedule cost more than the
        # encryption of a short secret. The ciphers are stateless, so threads share them.
        self._subkeys: dict[str, bytes] = {}
        self._ciphers: dict[str, AESGCM] = {}

    def _subkey(self, purpose: str) -> bytes:
        subkey = self._subkeys.get(purpose)
        if subkey is None:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
            subkey = hkdf.derive(self._secret)
            if len(self._subkeys) < _CACHED_PURPOSES:
                self._subkeys[purpose] = subkey
        return subkey

    def _cipher(self, purpose: str) -> AESGCM:
        cipher = self._ciphers.get(purpose)
        if cipher is None:
            cipher = AESGCM(self._subkey(purpose))
            if len(self._ciphers) < _CACHED_PURPOSES:
                self._ciphers[purpose] = cipher
        return cipher

    def encrypt(self, plaintext: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._cipher(purpose).encrypt(nonce, plaintext, purpose.encode())
        return _VERSION + nonce + sealed

    def decrypt(self, blob: bytes, *, purpose: str) -> bytes:
        """Raises ConfigurationError if the blob was not sealed by this master key."""
        if blob[:1] != _VERSION:
            raise ConfigurationError("unknown ciphertext version")
        try:
            return self._cipher(purpose).decrypt(blob[1:13], blob[13:], purpose.encode())
        except InvalidTag as exc:
            raise ConfigurationError(
                "a secret does not decrypt under this master key: is LICENTIA_MASTER_KEY right?"
            ) from exc

    def keyed_hash(self, value: str, *, purpose: str) -> str:
        return hmac.new(self._subkey(purpose), value.encode(), hashlib.sha256).hexdigest()


def load_master_key(settings: Settings) -> MasterKey:
    """The master key from ``LICENTIA_MASTER_KEY`` or the key file.

    In development (declared: ``LICENTIA_ENVIRONMENT=development``) a missing key file
    is created (mode 0600). Otherwise a missing or placeholder key is refused with
    ConfigurationError. Everywhere, ConfigurationError refuses a key that is not
    url-safe base64 of at least 32 bytes (a passphrase), one of too few distinct bytes
    (all zero, a repeated pattern), and a key file that other users may read.
    """
    if settings.master_key is not None:
        value = settings.master_key.get_secret_value().strip()
        if value.lower() in PLACEHOLDER_SECRETS:
            if not settings.is_development:
                raise ConfigurationError("LICENTIA_MASTER_KEY is a placeholder; set a real key")
        else:
            return MasterKey(_decode(value, "LICENTIA_MASTER_KEY"))
    path = settings.master_key_file
    if path.exists():
        _check_private(path)
        return MasterKey(_decode(path.read_text().strip(), str(path)))
    if not settings.is_development:
        raise ConfigurationError(
            f"no master key: set LICENTIA_MASTER_KEY or create {path} "
            "(`licentia admin master-key` prints a new one); "
            "LICENTIA_ENVIRONMENT=development creates one by itself"
        )
    return MasterKey(_decode(_create_key_file(path), str(path)))


def new_master_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _create_key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = new_master_key_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    return text


def _check_private(path: Path) -> None:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise ConfigurationError(
            f"the master key file {path} is open to other users: chmod 600 {path}"
        )


def _decode(text: str, source: str) -> bytes:
    """The key's bytes. Strict: base64 decoders skip characters outside their alphabet,
    which would turn a passphrase into a shorter, guessable key without a word."""
    if _BASE64URL.fullmatch(text) is None:
        raise ConfigurationError(
            f"{source} must be url-safe base64 of 32 random bytes (A-Z, a-z, 0-9, '-', "
            "'_'), as `licentia admin master-key` prints it, not a passphrase"
        )
    secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if len(set(secret)) < _MIN_DISTINCT_BYTES:
        raise ConfigurationError(
            f"{source} is not random (too few distinct bytes): "
            "`licentia admin master-key` prints a new one"
        )
    return secret
