"""A bare device speaking the wire protocol, for server-side protocol tests.

Deliberately independent of the client SDK: these tests pin the protocol itself
(docs/device-protocol.md), so the SDK and the server cannot drift together.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from licentia.formats.device import device_id, okp_jwk
from licentia.formats.document_types import RECEIPT_TYP, REQUEST_TYP, RETURN_TYP
from licentia.formats.jws import sign_document
from tests.factories import VendorHandle

FACTORS = {"machine-id": "a" * 64, "dmi-uuid": "b" * 64, "mac": "c" * 64, "disk": "d" * 64}


@dataclass
class BareDevice:
    vendor: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    enc: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    fingerprint: dict[str, str] = field(default_factory=lambda: dict(FACTORS))
    vm: bool = False
    seq: int = 0
    state: str | None = None

    @property
    def id(self) -> str:
        return device_id(self.key.public_key())

    def _sign(self, claims: dict[str, Any], typ: str) -> str:
        base = {
            "iss": self.id,
            "aud": self.vendor,
            "iat": int(time.time()),
            "jti": secrets.token_urlsafe(12),
        }
        return sign_document({**base, **claims}, self.key, kid=self.id, typ=typ)

    def request(self, op: str, ticket: str | None = None, **overrides: Any) -> str:
        claims = {
            "op": op,
            "ticket": ticket,
            "device_key": okp_jwk(self.key.public_key()),
            "enc_key": okp_jwk(self.enc.public_key()),
            "fingerprint": self.fingerprint,
            "vm": self.vm,
            "seq": self.seq,
            "state": self.state,
            **overrides,
        }
        return self._sign(claims, REQUEST_TYP)

    def receipt(self, seq: int, state: str) -> str:
        return self._sign({"seq": seq, "state": state}, RECEIPT_TYP)

    def return_proof(self, license_id: str) -> str:
        return self._sign({"license": license_id, "seq": self.seq}, RETURN_TYP)


def activate_device(vendor: VendorHandle, ticket_code: str) -> str:
    """Activate a bare device on the ticket; returns the id the vendor knows it by."""
    device = BareDevice(vendor.slug)
    response = vendor.client.post(
        f"/api/v1/vendors/{vendor.slug}/devices/activate",
        content=device.request("activate", ticket_code),
        headers={"Content-Type": "application/jose"},
    )
    assert response.status_code == 200, response.text
    listed = vendor.ok("GET", "/devices")["items"]
    return str(next(item["id"] for item in listed if item["key_id"] == device.id))
