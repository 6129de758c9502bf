"""What the device signs: requests, receipts and return proofs (docs/device-protocol.md).

Each message is a compact JWS signed with the device's Ed25519 key, issued by the
device id (the key's JWK thumbprint) to the vendor, stamped with the device clock and
a random nonce.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from licentia.formats.device import device_id, okp_jwk
from licentia.formats.document_types import RECEIPT_TYP, REQUEST_TYP, RETURN_TYP
from licentia.formats.jws import sign_document

__all__ = ["DeviceSigner"]


@dataclass(frozen=True)
class DeviceSigner:
    """Signs the device's messages to one vendor."""

    vendor: str
    signing_key: Ed25519PrivateKey
    encryption_key: X25519PrivateKey

    @property
    def device_id(self) -> str:
        return device_id(self.signing_key.public_key())

    def request(
        self,
        op: str,
        *,
        now: datetime,
        seq: int,
        state: str,
        fingerprint: Mapping[str, str],
        vm: bool,
        ticket: str | None = None,
    ) -> str:
        """A request (``op`` activate, sync or offline) showing what the device holds."""
        claims = {
            "op": op,
            "ticket": ticket,
            "device_key": okp_jwk(self.signing_key.public_key()),
            "enc_key": okp_jwk(self.encryption_key.public_key()),
            "fingerprint": dict(fingerprint),
            "vm": vm,
            "seq": seq,
            "state": state,
        }
        return self._sign(claims, REQUEST_TYP, now)

    def receipt(self, *, now: datetime, seq: int, state: str) -> str:
        """Confirms that the update at ``seq`` was imported and the device holds ``state``."""
        return self._sign({"seq": seq, "state": state}, RECEIPT_TYP, now)

    def return_proof(self, license_id: str, *, now: datetime, seq: int) -> str:
        """Proof that the device gave up ``license_id``."""
        return self._sign({"license": license_id, "seq": seq}, RETURN_TYP, now)

    def _sign(self, claims: Mapping[str, Any], typ: str, now: datetime) -> str:
        kid = self.device_id
        envelope = {
            "iss": kid,
            "aud": self.vendor,
            "iat": int(now.timestamp()),
            "jti": secrets.token_urlsafe(16),
        }
        return sign_document({**envelope, **claims}, self.signing_key, kid=kid, typ=typ)
