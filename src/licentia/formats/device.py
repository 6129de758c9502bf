"""The device protocol's shared vocabulary (docs/device-protocol.md).

Pure: the client builds these messages, the server reads them, both with this module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from licentia.formats import base64url
from licentia.formats.digests import sha256
from licentia.formats.jws import MAX_ENCODED_PAYLOAD, SignatureInvalidError, parse_json

if TYPE_CHECKING:  # imported where an encryption key is read: not on a license check
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

OPERATIONS = ("activate", "sync", "offline", "listen")
_b64, _unb64 = base64url.encode, base64url.decode


def okp_jwk(key: Ed25519PublicKey | X25519PublicKey) -> dict[str, str]:
    """A public key as an RFC 8037 OKP JWK (no ``kid``)."""
    crv = "Ed25519" if isinstance(key, Ed25519PublicKey) else "X25519"
    return {"kty": "OKP", "crv": crv, "x": _b64(key.public_bytes_raw())}


def device_id(key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256) of the device's Ed25519 public key."""
    jwk = okp_jwk(key)
    canonical = json.dumps({k: jwk[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    return _b64(sha256(canonical.encode()))


def ed25519_from_jwk(jwk: Any) -> Ed25519PublicKey:
    """Raises SignatureInvalidError if ``jwk`` is not an Ed25519 OKP public key."""
    try:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError("not an Ed25519 OKP key")
        return Ed25519PublicKey.from_public_bytes(_unb64(str(jwk["x"])))
    except (AttributeError, KeyError, ValueError) as error:
        raise SignatureInvalidError(f"bad device key: {error}") from error


def x25519_from_jwk(jwk: Any) -> X25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    try:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "X25519":
            raise ValueError("not an X25519 OKP key")
        return X25519PublicKey.from_public_bytes(_unb64(str(jwk["x"])))
    except (AttributeError, KeyError, ValueError) as error:
        raise SignatureInvalidError(f"bad encryption key: {error}") from error


def state_hash(licenses: Iterable[tuple[str, int]]) -> str:
    """The hash of a container's content: sorted ``(license id, version)`` pairs."""
    pairs = sorted([license_id, int(version)] for license_id, version in licenses)
    return _b64(sha256(json.dumps(pairs, separators=(",", ":")).encode()))


def fingerprint_salt(vendor: str) -> bytes:
    """The per-vendor salt for hashing fingerprint factors: the same machine gives
    unrelated fingerprints to different vendors."""
    return sha256(b"licentia-fingerprint:" + vendor.encode())


def unverified_claims(token: str) -> Mapping[str, Any]:
    """The payload of a compact JWS *without* checking it — only to find which key
    must verify it (a device request names its own key). Raises SignatureInvalidError."""
    segments = token.split(".", 3)
    if len(segments) != 3:
        raise SignatureInvalidError("not a compact JWS")
    if len(segments[1]) > MAX_ENCODED_PAYLOAD:
        raise SignatureInvalidError("the payload is too large")
    try:
        claims = parse_json(_unb64(segments[1]))
    except (ValueError, UnicodeDecodeError) as error:
        raise SignatureInvalidError(f"not a compact JWS: {error}") from error
    if not isinstance(claims, dict):
        raise SignatureInvalidError("the payload is not a JSON object")
    return claims
