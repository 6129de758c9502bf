"""Compact JWS (RFC 7515) signed with Ed25519 (RFC 9864 ``alg`` "Ed25519").

Verification accepts RFC 8037's deprecated "EdDSA" name for the same algorithm (older
libraries emit it) and nothing else: not ``none``, not HMAC keyed with a public key,
not any other curve.
"""

from __future__ import annotations

import binascii
import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from licentia.formats import base64url

ALGORITHM = "Ed25519"
ACCEPTED_ALGORITHMS = ("Ed25519", "EdDSA")
# A device update carries the whole container (each license a JWS of its own), so it
# is large at a few dozen licenses. Still bounded, so that a hostile token cannot make
# a verifier parse without end.
MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
MAX_ENCODED_PAYLOAD = (MAX_PAYLOAD_BYTES + 2) // 3 * 4
_FROM_BASE64URL = bytes.maketrans(b"-_", b"+/")
_LAST_SIGNATURE_SYMBOLS = frozenset("AQgw")  # the base64url symbols whose low 4 bits are 0
_JSON = json.JSONDecoder()
# Documents nest a few levels; the JSON parser recurses once per level and fails with
# RecursionError near a thousand, so a header or payload nested deeper than this is
# refused before it is parsed (a device request is signed by a key its sender makes up).
MAX_JSON_DEPTH = 32
_ESCAPED = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
# The header sign_document writes, byte for byte, with a kid that JSON needs no escape
# for: it passes every check of _key_for, so matching it stands for parsing it (the
# first document of every batch pays for its header). Any other header is parsed.
_PLAIN_HEADER = re.compile(
    rb'\{"alg":"Ed25519","kid":"([A-Za-z0-9._~+/=:-]{1,256})","typ":"([A-Za-z0-9.+/-]{1,64})"\}'
)


class SignatureInvalidError(Exception):
    """The document is not a well-formed JWS signed by one of the given keys."""

    code = "SIGNATURE_INVALID"


def public_jwk(public_key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    """The public key as an RFC 8037 OKP JWK with ``kid``, ``alg`` and ``use``."""
    raw = public_key.public_bytes_raw()
    x = base64url.encode(raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": ALGORITHM, "use": "sig"}


def sign_document(
    claims: Mapping[str, Any], private_key: Ed25519PrivateKey, *, kid: str, typ: str
) -> str:
    """Serialize ``claims`` as compact JSON and return the compact JWS.

    RFC 7515 section 7.1 spelled out: the signature covers
    ``BASE64URL(header) "." BASE64URL(payload)``. Done by hand because a JOSE library
    re-imported and re-exported the key on every call, which made signing cost three
    raw Ed25519 signatures; jwcrypto verifies what this produces
    (tests/unit/test_jws.py).
    """
    header = {"alg": ALGORITHM, "kid": kid, "typ": typ}
    payload = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}.{_b64(payload)}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64(signature)}"


_b64 = base64url.encode


def verify_document(
    token: str | bytes,
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    typ: str,
    approved_headers: dict[str, Ed25519PublicKey] | None = None,
) -> dict[str, Any]:
    """Verify ``token`` against the key named by its ``kid`` and return its claims.

    Raises SignatureInvalidError if the token is malformed, names an unknown ``kid``,
    uses another algorithm or ``typ``, or its signature does not verify.
    Validity times are the caller's business: this checks authenticity only.

    ``approved_headers``, a dict the caller keeps for one batch of documents checked
    with the same ``public_keys`` and ``typ``, remembers the key each header segment
    was checked for: documents of one signer share a header, and a device holding a
    hundred licenses then parses it once. Every signature is still verified.

    Spelled out like :func:`sign_document`, and strict: exactly the compact form, every
    segment plain base64url, no ``crit`` or unencoded payload (RFC 7797), a 64-byte
    signature checked over the received ``header.payload`` text before the payload is
    parsed. A JOSE library cost more than the Ed25519 verification itself, which made a
    client's cold start and every device request pay twice; tests/unit/test_jws.py
    checks that documents of an independent library (jwcrypto) still verify.
    """
    try:
        text = token.decode("ascii") if isinstance(token, bytes) else token
        segments = text.split(".")
        # Base64url has neither "+", "/" nor padding; _decode refuses any other stray byte.
        if len(segments) != 3 or "=" in text or "+" in text or "/" in text:
            raise SignatureInvalidError("not a compact JWS")
        head, payload, signature = segments
        if len(payload) > MAX_ENCODED_PAYLOAD:
            raise SignatureInvalidError("the payload is too large")
        key = approved_headers.get(head) if approved_headers is not None else None
        if key is None:
            key = _key_for(head, public_keys, typ)
            if approved_headers is not None:
                approved_headers[head] = key
        raw_signature = _decode(signature)
        if len(raw_signature) != 64:
            raise SignatureInvalidError("an Ed25519 signature has 64 bytes")
        # 64 bytes leave four unused bits in the last symbol: only the one spelling with
        # those bits zero is the signature, so no other text of the document verifies.
        if signature[-1] not in _LAST_SIGNATURE_SYMBOLS:
            raise SignatureInvalidError("the signature is not canonical base64url")
        key.verify(raw_signature, f"{head}.{payload}".encode("ascii"))
        claims = parse_json(_decode(payload))
    except InvalidSignature as exc:
        raise SignatureInvalidError("not a valid signed document: bad signature") from exc
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise SignatureInvalidError(f"not a valid signed document: {exc}") from exc
    if not isinstance(claims, dict):
        raise SignatureInvalidError("the payload is not a JSON object")
    return claims


def parse_json(raw: bytes) -> Any:
    """``json.loads(raw)``: the same value or error, faster for compact UTF-8 JSON, which
    every document this project signs is. json.loads first guesses the encoding and
    strips whitespace in Python, a third of the cost for a license's claims; anything
    that needs either (another encoding, a byte-order mark, spaces around the value)
    goes to json.loads itself.

    Raises ValueError for JSON nested deeper than MAX_JSON_DEPTH, before parsing it."""
    if _nests_too_deep(raw):
        raise ValueError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        text = raw.decode("utf-8")
        value, end = _JSON.raw_decode(text)
        if end == len(text):
            return value
    except ValueError:  # UnicodeDecodeError and JSONDecodeError too
        pass
    return json.loads(raw)


def _nests_too_deep(raw: bytes) -> bool:
    """Whether the arrays and objects of ``raw`` nest deeper than MAX_JSON_DEPTH.

    Counting brackets costs nothing and settles every document this project makes.
    Otherwise the brackets outside strings are kept and the innermost pairs removed,
    level by level, with regular expressions (no Python loop over the bytes); what is
    left after MAX_JSON_DEPTH rounds was deeper, or unbalanced and no JSON anyway."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
        return False
    brackets = _STRING.sub(b"", _ESCAPED.sub(b"", raw)).translate(None, _NOT_A_BRACKET)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)
    return bool(brackets)


def _key_for(
    segment: str, public_keys: Mapping[str, Ed25519PublicKey], typ: str
) -> Ed25519PublicKey:
    """The key that verifies documents with the header ``segment``, once it is checked."""
    raw = _decode(segment)
    plain = _PLAIN_HEADER.fullmatch(raw)
    if plain is not None and plain[2].decode("ascii") == typ:
        key = public_keys.get(plain[1].decode("ascii"))
        if key is not None:
            return key
    header = parse_json(raw)
    if not isinstance(header, dict):
        raise SignatureInvalidError("the JWS header is not a JSON object")
    kid = header.get("kid")
    if header.get("alg") not in ACCEPTED_ALGORITHMS:
        raise SignatureInvalidError(f"algorithm {header.get('alg')!r} is not accepted")
    if header.get("typ") != typ:
        raise SignatureInvalidError(f"expected a {typ} document, got {header.get('typ')!r}")
    if "crit" in header or header.get("b64", True) is not True:
        raise SignatureInvalidError("critical or unencoded-payload headers are not supported")
    if not isinstance(kid, str) or kid not in public_keys:
        raise SignatureInvalidError(f"unknown signing key {kid!r}")
    if header["alg"] == "EdDSA":
        warnings.warn(
            "the JWS algorithm name EdDSA is deprecated via RFC 9864: sign with Ed25519",
            DeprecationWarning,
            stacklevel=4,
        )
    return public_keys[kid]


def _decode(segment: str) -> bytes:
    # Strict: any byte outside the base64 alphabet is an error (a2b_base64 would skip
    # it otherwise), and _segments refused "+", "/" and "=": what is left is base64url.
    # What urlsafe_b64decode does, without its layers of Python calls.
    padded = (segment + "=" * (-len(segment) % 4)).encode("ascii")
    return binascii.a2b_base64(padded.translate(_FROM_BASE64URL), strict_mode=True)
