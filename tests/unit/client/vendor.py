"""A bare vendor speaking the device protocol, for the SDK's offline tests.

It answers a device's request file with a signed update, as License Central does
(docs/device-protocol.md), without a server: the SDK's checks of signatures,
bindings, sequences and times can then be driven exhaustively and fast. Deliberately
independent of the SDK's own code; the integration tests run the SDK against the real
server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc import jwe
from joserfc.jwk import OKPKey

from licentia.formats.device import (
    device_id,
    ed25519_from_jwk,
    state_hash,
    unverified_claims,
    x25519_from_jwk,
)
from licentia.formats.document_types import LICENSE_TYP, UPDATE_TYP
from licentia.formats.jws import (
    SignatureInvalidError,
    public_jwk,
    sign_document,
    verify_document,
)

DEFAULT_OPTIONS: dict[str, Any] = {
    "fingerprint_tolerance": {"preset": "medium", "k": None, "n": None},
    "vm_policy": "allow",
    "lease_days": 30,
    "refresh_days": 7,
}


@dataclass
class Offer:
    """One license the vendor puts into a device's container."""

    license_id: str = "L-1"
    product: str = "editor"
    features: tuple[str, ...] = ("edit", "export")
    version: int = 1
    lease_days: int = 30
    refresh_days: int = 7
    valid_days: int | None = None
    maintenance_days: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    public: str | None = None
    protected: dict[str, Any] | None = None
    secret: str | None = None


@dataclass
class Request:
    """What a device's request file says about it (signature checked)."""

    device_id: str
    fingerprint: dict[str, str]
    encryption_key: bytes
    seq: int
    claims: dict[str, Any]


@dataclass
class BareVendor:
    slug: str = "acme"
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    kid: str = "k-test"
    seq: int = 0

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key.public_key(), self.kid)]}

    def read_request(self, path: Path) -> Request:
        token = path.read_text().strip()
        key = ed25519_from_jwk(unverified_claims(token)["device_key"])
        kid = device_id(key)
        claims = verify_document(token, {kid: key}, typ="licentia-device-request+jwt")
        enc = x25519_from_jwk(claims["enc_key"]).public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Request(kid, claims["fingerprint"], enc, claims["seq"], claims)

    def license_claims(
        self, request: Request, offer: Offer, *, now: datetime | None = None
    ) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        lease_until = now + timedelta(days=offer.lease_days)
        valid_until = now + timedelta(days=offer.valid_days) if offer.valid_days else None
        maintenance = (
            now + timedelta(days=offer.maintenance_days) if offer.maintenance_days else None
        )
        claims: dict[str, Any] = {
            "iss": self.slug,
            "sub": offer.license_id,
            "iat": _epoch(now),
            "nbf": _epoch(now),
            "jti": secrets.token_urlsafe(8),
            "ver": offer.version,
            "state": "activated",
            "product": offer.product,
            "features": list(offer.features),
            "maintenance_until": _epoch(maintenance) if maintenance else None,
            "options": {**DEFAULT_OPTIONS, "lease_days": offer.lease_days, **offer.options},
            "public_data": offer.public,
            "protected_data": offer.protected,
            "aud": request.device_id,
            "cnf": {"jkt": request.device_id},
            "fingerprint": request.fingerprint,
            "lease_until": _epoch(lease_until),
            "refresh_after": _epoch(now + timedelta(days=offer.refresh_days)),
            "valid_until": _epoch(valid_until) if valid_until else None,
            "exp": _epoch(min(d for d in (lease_until, valid_until) if d is not None)),
        }
        if offer.secret is not None:
            claims["secret_data"] = _encrypt(offer.secret, request.encryption_key)
        return claims

    def sign_license(self, claims: dict[str, Any]) -> str:
        return sign_document(claims, self.key, kid=self.kid, typ=LICENSE_TYP)

    def update(
        self,
        request: Request,
        documents: list[str],
        *,
        now: datetime | None = None,
        audience: str | None = None,
    ) -> str:
        """The next update for the device: its full container, at the next ``seq``."""
        self.seq += 1
        pairs = [_id_and_version(d) for d in documents]
        claims = {
            "iss": self.slug,
            "aud": audience or request.device_id,
            "iat": _epoch(now or datetime.now(UTC)),
            "seq": self.seq,
            "status": "active",
            "licenses": documents,
            "removed": [],
            "state": state_hash(p for p in pairs if p is not None),
        }
        return sign_document(claims, self.key, kid=self.kid, typ=UPDATE_TYP)

    def answer(
        self, request_file: Path, update_file: Path, *offers: Offer, now: datetime | None = None
    ) -> Path:
        """Read a request file and write the update that holds ``offers``."""
        request = self.read_request(request_file)
        documents = [self.sign_license(self.license_claims(request, o, now=now)) for o in offers]
        update_file.write_text(self.update(request, documents, now=now) + "\n")
        return update_file


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    """A compact JWS with any header and signature bytes (for attacks)."""
    return ".".join(
        (_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature))
    )


def hmac_forgery(claims: dict[str, Any], key: bytes, kid: str, typ: str = LICENSE_TYP) -> str:
    """An HS256 "signature" keyed with ``key`` (e.g. the vendor's public key)."""
    header = _b64(json.dumps({"alg": "HS256", "kid": kid, "typ": typ}).encode())
    payload = _b64(json.dumps(claims).encode())
    mac = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


def _id_and_version(document: str) -> tuple[str, int] | None:
    # An attack test may hand over a document that does not even parse.
    try:
        claims = unverified_claims(document)
        return str(claims["sub"]), int(claims["ver"])
    except (SignatureInvalidError, KeyError, TypeError, ValueError):
        return None


def _encrypt(secret: str, encryption_key: bytes) -> str:
    key = OKPKey.import_key(X25519PublicKey.from_public_bytes(encryption_key))
    header = {"alg": "ECDH-ES", "enc": "A256GCM"}
    return jwe.encrypt_compact(header, secret.encode(), key, algorithms=["ECDH-ES", "A256GCM"])


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
