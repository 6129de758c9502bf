"""Compact JWS (RFC 7515) signed with Ed25519 (RFC 9864 ``alg`` "Ed25519").

Verification accepts RFC 8037's deprecated "EdDSA" name for the same algorithm (older
libraries emit it) and nothing else: not ``none``, not HMAC keyed with a public key,
not any other curve.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

ALGORITHM = "Ed25519"
ACCEPTED_ALGORITHMS = ("Ed25519", "EdDSA")
# A device update carries the whole container (each license a JWS of its own), so it
# outgrows joserfc's default 128 kB payload limit at a few dozen licenses. Still
# bounded, so that a hostile token cannot make a verifier parse without end.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
_REGISTRY = jws.JWSRegistry(algorithms=list(ACCEPTED_ALGORITHMS))
_REGISTRY.max_payload_length = MAX_PAYLOAD_BYTES


class SignatureInvalidError(Exception):
    """The document is not a well-formed JWS signed by one of the given keys."""

    code = "SIGNATURE_INVALID"


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    """The public key as an RFC 8037 OKP JWK with ``kid``, ``alg`` and ``use``."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def sign_document(
    claims: Mapping[str, Any], private_key: Ed25519PrivateKey, *, kid: str, typ: str
) -> str:
    """Serialize ``claims`` as compact JSON and return the compact JWS.

    RFC 7515 section 7.1 spelled out: the signature covers
    ``BASE64URL(header) "." BASE64URL(payload)``. Done by hand because a JOSE library
    re-imported and re-exported the key on every call, which made signing cost three
    raw Ed25519 signatures; verification, where hostile input arrives, stays with
    joserfc, and jwcrypto verifies what this produces (tests/unit/test_jws.py).
    """
    header = {"alg": ALGORITHM, "kid": kid, "typ": typ}
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}.{_b64(payload)}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def verify_document(
    token: str | bytes, public_keys: Mapping[str, Ed25519PublicKey], *, typ: str
) -> dict[str, Any]:
    """Verify ``token`` against the key named by its ``kid`` and return its claims.

    Raises SignatureInvalidError if the token is malformed, names an unknown ``kid``,
    uses another algorithm or ``typ``, or its signature does not verify.
    Validity times are the caller's business: this checks authenticity only.
    """
    try:
        header = _header(token)
        kid = header.get("kid")
        if header.get("alg") not in ACCEPTED_ALGORITHMS:
            raise SignatureInvalidError(f"algorithm {header.get('alg')!r} is not accepted")
        if header.get("typ") != typ:
            raise SignatureInvalidError(f"expected a {typ} document, got {header.get('typ')!r}")
        if not isinstance(kid, str) or kid not in public_keys:
            raise SignatureInvalidError(f"unknown signing key {kid!r}")
        key = OKPKey.import_key(public_keys[kid])
        result = jws.deserialize_compact(token, key, registry=_REGISTRY)
        claims = json.loads(result.payload)
    except (JoseError, ValueError, UnicodeDecodeError) as exc:
        raise SignatureInvalidError(f"not a valid signed document: {exc}") from exc
    if not isinstance(claims, dict):
        raise SignatureInvalidError("the payload is not a JSON object")
    return claims


def _header(token: str | bytes) -> dict[str, Any]:
    text = token.decode("ascii") if isinstance(token, bytes) else token
    segment = text.split(".", 1)[0]
    header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(header, dict):
        raise ValueError("the JWS header is not a JSON object")
    return header


def generate_signing_key() -> Ed25519PrivateKey:
    """A fresh Ed25519 private key."""
    return Ed25519PrivateKey.generate()
