"""Verifying what License Central signs: updates and the license documents inside them.

An update (``typ`` licentia-update+jwt) is accepted only if the vendor's key signed
it, the vendor issued it, it is addressed to this device and its ``seq`` is higher
than the one the device holds. Each license document inside it (``typ``
licentia-license+jwt) must be signed by the vendor's key, issued by the vendor and
bound to this device (``aud`` and ``cnf.jkt``). docs/device-protocol.md is the
specification.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from licentia.client._exceptions import (
    SignatureInvalidError,
    UpdateReplayedError,
    WrongDeviceError,
)
from licentia.client._frozen import FrozenValue
from licentia.formats import jws
from licentia.formats.device import ed25519_from_jwk, state_hash
from licentia.formats.document_types import LICENSE_TYP, UPDATE_TYP

if TYPE_CHECKING:  # the key is loaded only when secret data is read
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

__all__ = [
    "VerifiedUpdate",
    "decrypt_secret",
    "load_public_keys",
    "verify_license",
    "verify_update",
]

SECRET_ALGORITHMS = ["ECDH-ES", "A256GCM"]


class VerifiedUpdate(FrozenValue):
    """An update whose signature, addressee and sequence were checked."""

    __slots__ = _fields = ("seq", "issued_at", "device_status", "documents", "claims", "state")
    seq: int
    issued_at: datetime
    device_status: str | None
    documents: Mapping[str, str]
    claims: Mapping[str, Mapping[str, Any]]
    state: str

    def __init__(
        self,
        seq: int,
        issued_at: datetime,
        device_status: str | None,
        documents: Mapping[str, str],
        claims: Mapping[str, Mapping[str, Any]],
        state: str,
    ) -> None:
        self._assign(seq, issued_at, device_status, documents, claims, state)


def load_public_keys(keys: Mapping[str, Any]) -> dict[str, Ed25519PublicKey]:
    """The vendor's verification keys by ``kid``, from ``{kid: Ed25519PublicKey}`` or a
    JWKS document (``{"keys": [...]}``; keys other than Ed25519 OKP are skipped).
    Raises ValueError if no Ed25519 key is left: the client could verify nothing."""
    listed = keys.get("keys")
    if isinstance(listed, list):
        found = {}
        for jwk in listed:
            if isinstance(jwk, dict) and jwk.get("crv") == "Ed25519" and jwk.get("kid"):
                found[str(jwk["kid"])] = ed25519_from_jwk(jwk)
    else:
        found = {kid: key for kid, key in keys.items() if isinstance(key, Ed25519PublicKey)}
        if len(found) != len(keys):
            raise ValueError("public_keys maps key ids to Ed25519PublicKey objects or is a JWKS")
    if not found:
        raise ValueError("public_keys holds no Ed25519 key of the vendor")
    return found


def verify_update(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    vendor: str,
    device_id: str,
    held_seq: int,
) -> VerifiedUpdate:
    """Check an update and every license document in it.

    Raises SignatureInvalidError (not signed by the vendor, altered, malformed),
    WrongDeviceError (made for another device) or UpdateReplayedError (``seq`` not
    above ``held_seq``).
    """
    claims = _verified(token, keys, typ=UPDATE_TYP, vendor=vendor, what="update")
    if claims.get("aud") != device_id:
        raise WrongDeviceError()
    seq, issued_at = _count(claims.get("seq")), _count(claims.get("iat"))
    if seq is None or issued_at is None or not isinstance(claims.get("licenses"), list):
        raise _malformed("update", "it lacks seq, iat or licenses")
    if seq <= held_seq:
        raise UpdateReplayedError(
            f"This update (sequence {seq}) is not newer than the licenses on this device "
            f"(sequence {held_seq}); it was imported already or replaced by a later one. "
            "Create a new request file to get a current update."
        )
    documents, verified = _verified_documents(claims["licenses"], keys, vendor, device_id)
    status = claims.get("status")
    return VerifiedUpdate(
        seq=seq,
        issued_at=datetime.fromtimestamp(issued_at, UTC),
        device_status=status if isinstance(status, str) else None,
        documents=documents,
        claims=verified,
        state=state_hash((lid, c["ver"]) for lid, c in verified.items()),
    )


def _verified_documents(
    tokens: list[Any], keys: Mapping[str, Ed25519PublicKey], vendor: str, device_id: str
) -> tuple[dict[str, str], dict[str, Mapping[str, Any]]]:
    documents: dict[str, str] = {}
    verified: dict[str, Mapping[str, Any]] = {}
    approved: dict[str, Ed25519PublicKey] = {}
    for token in tokens:
        if not isinstance(token, str):
            raise _malformed("update", "a license is not a compact JWS")
        claims = verify_license(
            token, keys, vendor=vendor, device_id=device_id, approved_headers=approved
        )
        documents[claims["sub"]], verified[claims["sub"]] = token, claims
    return documents, verified


def verify_license(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    vendor: str,
    device_id: str,
    approved_headers: dict[str, Ed25519PublicKey] | None = None,
) -> dict[str, Any]:
    """The claims of a device-bound license document, checked.

    ``approved_headers`` is an empty dict shared by the documents of one batch (see
    :func:`licentia.formats.jws.verify_document`). Raises SignatureInvalidError (not
    signed by the vendor, altered, malformed) or WrongDeviceError (bound to another
    device).
    """
    # _verified, spelled out: every cold start checks every stored license.
    try:
        claims = jws.verify_document(
            token, keys, typ=LICENSE_TYP, approved_headers=approved_headers
        )
    except jws.SignatureInvalidError as error:
        raise _not_signed("license", error) from error
    if claims.get("iss") != vendor:
        raise _other_issuer("license", claims, vendor)
    confirmation = claims.get("cnf")
    if claims.get("aud") != device_id or not (
        isinstance(confirmation, dict) and confirmation.get("jkt") == device_id
    ):
        raise WrongDeviceError(
            f"License {claims.get('sub')} was made for another device. "
            "Activate it on this device with your ticket, or use the device it was made for."
        )
    _check_license_shape(claims)
    return claims


# Claim → the types it may have; a document that does not fit is refused whole. The
# claims come from a JSON parser, whose values are of exactly these types (a bool is
# not an int here), so the check compares types rather than calling isinstance.
_LICENSE_SHAPE: dict[str, tuple[type, ...]] = {
    "sub": (str,),
    "ver": (int,),
    "iat": (int,),
    "product": (str,),
    "features": (list,),
    "lease_until": (int,),
    "refresh_after": (int,),
    "valid_until": (int, type(None)),
    "maintenance_until": (int, type(None)),
    "fingerprint": (dict,),
    "options": (dict,),
}
# Every combination of types the shape allows, so that a well-formed document is
# checked in one lookup: every cold start checks every license.
_LICENSE_SHAPES = frozenset(itertools.product(*_LICENSE_SHAPE.values()))
_NAMES_ONLY = frozenset({str})
_TIME_CLAIMS = ("iat", "lease_until", "refresh_after", "valid_until", "maintenance_until")
LATEST_TIME = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold


def _check_license_shape(claims: Mapping[str, Any]) -> None:
    if tuple(map(type, map(claims.get, _LICENSE_SHAPE))) not in _LICENSE_SHAPES:
        for name, types in _LICENSE_SHAPE.items():
            if type(claims.get(name)) not in types:
                raise _malformed("license", f"its {name!r} claim is missing or of the wrong type")
    if not set(map(type, claims["features"])) <= _NAMES_ONLY:
        raise _malformed("license", "its features are not all names")
    times = [claims[name] or 0 for name in _TIME_CLAIMS]
    if min(times) < 0 or max(times) > LATEST_TIME:
        raise _malformed("license", "a time in it is out of range")


def decrypt_secret(token: str, key: X25519PrivateKey, *, license_id: str) -> str:
    """Open secret data encrypted to this device (JWE ECDH-ES + A256GCM).

    Raises SignatureInvalidError if it was not encrypted to this device's key or was
    altered (AES-GCM authenticates the ciphertext).
    """
    # joserfc is imported here, on the first secret opened: a license check without
    # secret data (nearly every one) should not pay for loading it.
    from joserfc import jwe
    from joserfc.errors import JoseError
    from joserfc.jwk import OKPKey

    try:
        result = jwe.decrypt_compact(token, OKPKey.import_key(key), algorithms=SECRET_ALGORITHMS)
        return result.plaintext.decode("utf-8") if result.plaintext is not None else ""
    except (JoseError, ValueError, UnicodeDecodeError) as error:
        raise SignatureInvalidError(
            f"The secret data of license {license_id} cannot be opened on this device "
            f"({error}). Sync the license or download it again from the License Portal."
        ) from error


def _verified(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    typ: str,
    vendor: str,
    what: str,
    approved_headers: dict[str, Ed25519PublicKey] | None = None,
) -> dict[str, Any]:
    try:
        claims = jws.verify_document(token, keys, typ=typ, approved_headers=approved_headers)
    except jws.SignatureInvalidError as error:
        raise _not_signed(what, error) from error
    if claims.get("iss") != vendor:
        raise _other_issuer(what, claims, vendor)
    return claims


def _not_signed(what: str, error: jws.SignatureInvalidError) -> SignatureInvalidError:
    return SignatureInvalidError(
        f"The {what} is not signed by your vendor, or it was modified ({error}). "
        "Sync again or download it again from the License Portal."
    )


def _other_issuer(what: str, claims: Mapping[str, Any], vendor: str) -> SignatureInvalidError:
    return SignatureInvalidError(
        f"The {what} was issued by {claims.get('iss')!r}, not by your vendor {vendor!r}. "
        "Use the files your vendor's License Central made for this device."
    )


def _malformed(what: str, detail: str) -> SignatureInvalidError:
    return SignatureInvalidError(
        f"The {what} is signed by your vendor but this SDK cannot read it ({detail}). "
        "Update the application, or contact your vendor."
    )


def _count(value: Any) -> int | None:
    """``value`` if it is a non-negative integer (JSON has no other kind) a datetime can
    hold as epoch seconds, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LATEST_TIME:
        return value
    return None
