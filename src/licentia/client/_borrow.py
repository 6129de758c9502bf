"""Borrowed seats: a seat held on the server while the device works offline.

Borrowing sends a device request (signed with the device key, naming its fingerprint)
and receives a *borrow document*: a ``licentia-borrow+jwt`` signed by the vendor,
addressed to this device (``aud`` and ``cnf.jkt`` are the device id), carrying the
fingerprint recorded at the borrow, the template options and ``exp`` (the end of the
borrow). The SDK keeps it in ``<state>/borrows/<lease id>.jws`` and accepts it offline
while the vendor's key verifies it, it names this device, the trusted clock is before
its ``exp`` and the current fingerprint still matches under the template's tolerance.

Returning early frees the seat on the server at once: online (a release of the
lease), or with a *return file* (a ``licentia-return+jwt`` naming the lease, signed
by the device key) that any online machine uploads. Either way the SDK deletes its
copy of the document first. A user who kept a copy of the file could still present it
to the SDK until its ``exp``: the seat is free on the server by then, so an early
return is a promise the device keeps, as with any offline license.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from licentia.client._exceptions import (
    FeatureMissingError,
    LeaseExpiredError,
    SignatureInvalidError,
    WrongDeviceError,
)
from licentia.client._files import write_atomic
from licentia.client._fingerprint import Fingerprint, Tolerance, ensure_fingerprint_matches
from licentia.client._store import DeviceStore
from licentia.formats.device import okp_jwk
from licentia.formats.document_types import REQUEST_TYP, RETURN_TYP
from licentia.formats.jws import sign_document

__all__ = [
    "BorrowShelf",
    "BorrowedSeat",
    "borrow_request",
    "borrow_return_proof",
    "ensure_feature",
    "read_borrow",
]

_LEASE_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


@dataclass(frozen=True)
class BorrowedSeat:
    """A verified borrow document."""

    lease_id: str
    license_id: str
    product: str
    features: tuple[str, ...]
    expires_at: datetime
    document: str
    claims: Mapping[str, Any]

    def allows(self, product: str, feature: str | None) -> bool:
        return self.product == product and (feature is None or feature in self.features)


def borrow_request(store: DeviceStore, vendor: str, fingerprint: Fingerprint, now: datetime) -> str:
    """The device request a borrow sends: proof of the device key, and its fingerprint."""
    claims = {
        "op": "sync",
        "ticket": None,
        "device_key": okp_jwk(store.signing_key.public_key()),
        "enc_key": okp_jwk(store.encryption_key.public_key()),
        "fingerprint": fingerprint.as_dict(),
        "seq": 0,
        "state": None,
    }
    return _signed(store, vendor, claims, REQUEST_TYP, now)


def borrow_return_proof(store: DeviceStore, vendor: str, lease_id: str, now: datetime) -> str:
    """A return file: the device gives the borrowed seat ``lease_id`` back."""
    claims = {"lease": lease_id, "device_key": okp_jwk(store.signing_key.public_key())}
    return _signed(store, vendor, claims, RETURN_TYP, now)


def _signed(
    store: DeviceStore, vendor: str, claims: Mapping[str, Any], typ: str, now: datetime
) -> str:
    kid = store.device_key_id
    envelope = {
        "iss": kid,
        "aud": vendor,
        "iat": int(now.timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    return sign_document({**envelope, **claims}, store.signing_key, kid=kid, typ=typ)


def read_borrow(
    claims: Mapping[str, Any],
    document: str,
    *,
    vendor: str,
    device_id: str,
    fingerprint: Fingerprint,
    now: datetime,
) -> BorrowedSeat:
    """Check the (signature-verified) ``claims`` of a borrow document for this device.

    Raises WrongDeviceError (another vendor or device), LeaseExpiredError (the borrow
    ended), FingerprintMismatchError (the hardware changed beyond the tolerance) and
    SignatureInvalidError (claims missing).
    """
    if claims.get("iss") != vendor:
        raise WrongDeviceError(f"This borrowed seat was issued by {claims.get('iss')!r}.")
    confirmation = claims.get("cnf")
    bound = confirmation.get("jkt") if isinstance(confirmation, dict) else None
    if claims.get("aud") != device_id or bound != device_id:
        raise WrongDeviceError()
    try:
        expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        seat = BorrowedSeat(
            lease_id=str(claims["lease"]),
            license_id=str(claims["sub"]),
            product=str(claims["product"]),
            features=tuple(str(f) for f in claims.get("features") or ()),
            expires_at=expires,
            document=document,
            claims=dict(claims),
        )
        recorded = Fingerprint(claims["fingerprint"])
        options = claims.get("options") or {}
        tolerance = Tolerance.from_option(options.get("fingerprint_tolerance"))
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
        raise SignatureInvalidError(f"The borrow document is malformed ({error}).") from error
    if now >= expires:
        raise LeaseExpiredError(
            f"The borrowed seat for {seat.product} ended on {expires:%Y-%m-%d %H:%M} UTC. "
            "Connect to License Central to check out a seat again."
        )
    ensure_fingerprint_matches(recorded, fingerprint, tolerance)
    return seat


def ensure_feature(seat: BorrowedSeat, feature: str | None) -> None:
    if feature is not None and feature not in seat.features:
        raise FeatureMissingError(f"The borrowed license does not include {feature!r}.")


class BorrowShelf:
    """The borrow documents kept on this device, one file per lease."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, lease_id: str, document: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self._path(lease_id), document.encode("ascii"))

    def documents(self) -> dict[str, str]:
        """``{lease id: document}`` of every stored borrow."""
        if not self.directory.is_dir():
            return {}
        found: dict[str, str] = {}
        for path in sorted(self.directory.glob("*.jws")):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                found[path.stem] = path.read_text(encoding="ascii").strip()
        return found

    def remove(self, lease_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(lease_id).unlink()

    def _path(self, lease_id: str) -> Path:
        if not _LEASE_ID.fullmatch(lease_id):
            raise ValueError(f"{lease_id!r} is not a lease id")
        return self.directory / f"{lease_id}.jws"
