"""Reading the messages a device sends: verify the signature, the audience, the time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from licentia.domain.errors import AuthenticationError, ValidationError
from licentia.formats.device import (
    OPERATIONS,
    device_id,
    ed25519_from_jwk,
    unverified_claims,
    x25519_from_jwk,
)
from licentia.formats.document_types import REQUEST_TYP
from licentia.formats.jws import SignatureInvalidError, verify_document

# The longest compact JWS a device may send (a request, receipt or return), as a body
# or as an uploaded file: far more than any real one, which is a few KiB.
MAX_MESSAGE_BYTES = 256 * 1024
ONLINE_SKEW = timedelta(minutes=15)
OFFLINE_WINDOW = timedelta(days=30)  # a request file may travel for a while


class DeviceSignatureError(AuthenticationError):
    code = "SIGNATURE_INVALID"


@dataclass(frozen=True)
class DeviceRequest:
    device_id: str
    public_key: bytes
    encryption_key: bytes
    fingerprint: dict[str, str]
    vm: bool
    op: str
    ticket: str | None
    seq: int
    state: str | None
    issued_at: datetime


def read_request(token: str, vendor_slug: str, now: datetime) -> DeviceRequest:
    """Verify a device request signed by the key it carries (proof of possession).

    Raises DeviceSignatureError (``SIGNATURE_INVALID``) for a bad signature or
    audience, ValidationError (``REQUEST_EXPIRED``) for a stale ``iat``, and
    ValidationError for malformed claims.
    """
    try:
        key = ed25519_from_jwk(unverified_claims(token).get("device_key"))
        kid = device_id(key)
        claims = verify_document(token, {kid: key}, typ=REQUEST_TYP)
    except SignatureInvalidError as error:
        raise DeviceSignatureError(str(error)) from error
    _check_envelope(claims, kid, vendor_slug)
    op = claims.get("op")
    if op not in OPERATIONS:
        raise ValidationError(f"unknown operation {op!r}", field="op")
    issued_at = _issued_at(claims, now, OFFLINE_WINDOW if op == "offline" else ONLINE_SKEW)
    return DeviceRequest(
        device_id=kid,
        public_key=key.public_bytes(Encoding.Raw, PublicFormat.Raw),
        encryption_key=_x25519(claims.get("enc_key")),
        fingerprint=_fingerprint(claims.get("fingerprint")),
        vm=bool(claims.get("vm", False)),
        op=op,
        ticket=claims.get("ticket") if isinstance(claims.get("ticket"), str) else None,
        seq=_int(claims.get("seq", 0), "seq"),
        state=claims.get("state") if isinstance(claims.get("state"), str) else None,
        issued_at=issued_at,
    )


def read_signed_by(
    token: str, key: Ed25519PublicKey, *, typ: str, vendor_slug: str, now: datetime
) -> dict[str, Any]:
    """Verify a receipt or return proof signed by a registered device's key."""
    kid = device_id(key)
    try:
        claims = verify_document(token, {kid: key}, typ=typ)
    except SignatureInvalidError as error:
        raise DeviceSignatureError(str(error)) from error
    _check_envelope(claims, kid, vendor_slug)
    _issued_at(claims, now, OFFLINE_WINDOW)
    return claims


def signer_of(token: str) -> str:
    """The device id a token says it is signed by (its ``kid``), unverified.

    Raises DeviceSignatureError if the token is not a JWS or names no device."""
    try:
        claims = unverified_claims(token)
    except SignatureInvalidError as error:
        raise DeviceSignatureError(str(error)) from error
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise DeviceSignatureError("the message does not name its device")
    return issuer


def _check_envelope(claims: dict[str, Any], kid: str, vendor_slug: str) -> None:
    if claims.get("iss") != kid:
        raise DeviceSignatureError("the message's issuer is not the key that signed it")
    if claims.get("aud") != vendor_slug:
        raise DeviceSignatureError(f"the message is addressed to {claims.get('aud')!r}")


def _issued_at(claims: dict[str, Any], now: datetime, window: timedelta) -> datetime:
    iat = _int(claims.get("iat"), "iat")
    # Compared as numbers first: a time beyond the calendar (the key's owner chooses
    # it) has no datetime, and is as expired as one a year off.
    if not (now - window).timestamp() <= iat <= (now + ONLINE_SKEW).timestamp():
        raise ValidationError(
            "the request is too old or from the future: check the device clock and create "
            "a new one",
            field="iat",
            code="REQUEST_EXPIRED",
        )
    return datetime.fromtimestamp(iat, now.tzinfo)


def _int(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{field} must be a non-negative integer", field=field)
    return value


def _fingerprint(value: Any) -> dict[str, str]:
    if (
        not isinstance(value, dict)
        or not value
        or len(value) > 32
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= 128 for k, v in value.items()
        )
    ):
        raise ValidationError("fingerprint must map factor names to hashes", field="fingerprint")
    return dict(value)


def _x25519(value: Any) -> bytes:
    try:
        return x25519_from_jwk(value).public_bytes(Encoding.Raw, PublicFormat.Raw)
    except SignatureInvalidError as error:
        raise ValidationError(str(error), field="enc_key") from error
