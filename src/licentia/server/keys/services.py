"""Vendor signing keys: create, rotate, retire, publish, and sign with the current one.

Exactly one key per vendor is ``current`` (signs new documents). Rotation demotes
it to ``previous``: it no longer signs but still verifies and stays in the JWKS
until the operator retires it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import ConflictError, NotFoundError
from licentia.formats.jws import public_jwk, sign_document
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.keys.models import SigningKey
from licentia.server.tenancy.models import Vendor
from licentia.server.tenancy.services import get_vendor_by_slug

CURRENT, PREVIOUS, RETIRED = "current", "previous", "retired"
_PURPOSE = "signing-key"


@dataclass(frozen=True)
class Signer:
    """The current key of one vendor, decrypted and ready to sign."""

    kid: str
    private_key: Ed25519PrivateKey

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        return sign_document(claims, self.private_key, kid=self.kid, typ=typ)


def create_signing_key(
    session: Session, actor: Actor, vendor_id: str, master: MasterKey
) -> SigningKey:
    """A new current key; the old current one (if any) becomes previous."""
    # Lock the vendor first: locking only the current key lets two concurrent rotations
    # both find nothing left to demote on PostgreSQL, and both insert a current key.
    session.execute(select(Vendor.id).where(Vendor.id == vendor_id).with_for_update())
    private = Ed25519PrivateKey.generate()
    for old in session.scalars(
        select(SigningKey)
        .where(SigningKey.vendor_id == vendor_id, SigningKey.status == CURRENT)
        .with_for_update()
    ):
        old.status = PREVIOUS
    key = SigningKey(
        vendor_id=vendor_id,
        kid=f"k-{secrets.token_hex(8)}",
        public_key=private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw),
        private_key_encrypted=master.encrypt(
            private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()), purpose=_PURPOSE
        ),
        status=CURRENT,
    )
    session.add(key)
    session.flush()
    record(session, actor, "signing_key.created", "signing_key", key.kid, after={"status": CURRENT})
    return key


def retire_signing_key(session: Session, actor: Actor, vendor_id: str, kid: str) -> SigningKey:
    """Stop trusting a previous key. Raises ConflictError for the current key."""
    key = _get(session, vendor_id, kid)
    if key.status == CURRENT:
        raise ConflictError(
            "the current key cannot be retired: rotate first", code="KEY_IS_CURRENT"
        )
    if key.status != RETIRED:
        before = key.status
        key.status, key.retired_at = RETIRED, utcnow()
        record(
            session,
            actor,
            "signing_key.retired",
            "signing_key",
            kid,
            before={"status": before},
            after={"status": RETIRED},
        )
    return key


def signing_keys_query(vendor_id: str) -> Select[SigningKey]:
    """The vendor's signing keys, for a paginated list."""
    return select(SigningKey).where(SigningKey.vendor_id == vendor_id)


def list_signing_keys(session: Session, vendor_id: str) -> list[SigningKey]:
    return list(
        session.scalars(
            select(SigningKey)
            .where(SigningKey.vendor_id == vendor_id)
            .order_by(SigningKey.created_at)
        )
    )


def current_signer(session: Session, vendor_id: str, master: MasterKey) -> Signer:
    """Raises ConflictError (``NO_SIGNING_KEY``) if the vendor has no current key."""
    key = session.scalar(
        select(SigningKey).where(SigningKey.vendor_id == vendor_id, SigningKey.status == CURRENT)
    )
    if key is None:
        raise ConflictError("this vendor has no signing key yet", code="NO_SIGNING_KEY")
    return unsealed_signer(master, key.kid, key.private_key_encrypted)


@lru_cache(maxsize=256)
def unsealed_signer(master: MasterKey, kid: str, sealed: bytes) -> Signer:
    """The decrypted signer of one key version. Cached per process: a key's sealed
    bytes never change (rotation makes a new kid), and unsealing on every request was a
    measurable share of a signing request. Nothing here is state another node needs."""
    raw = master.decrypt(sealed, purpose=_PURPOSE)
    return Signer(kid, Ed25519PrivateKey.from_private_bytes(raw))


def verification_keys(session: Session, vendor_id: str) -> dict[str, Ed25519PublicKey]:
    """Every key that still verifies (current and previous), by kid."""
    keys = session.scalars(
        select(SigningKey).where(SigningKey.vendor_id == vendor_id, SigningKey.status != RETIRED)
    )
    return {k.kid: Ed25519PublicKey.from_public_bytes(k.public_key) for k in keys}


def jwks(session: Session, vendor_id: str) -> dict[str, list[dict[str, str]]]:
    """The vendor's public keys that still verify, as an RFC 7517 JWK Set."""
    return {
        "keys": [public_jwk(key, kid) for kid, key in verification_keys(session, vendor_id).items()]
    }


def vendor_jwks(session: Session, slug: str) -> dict[str, list[dict[str, str]]]:
    """The JWK Set of the vendor with ``slug``; raises NotFoundError if there is none."""
    return jwks(session, get_vendor_by_slug(session, slug).id)


def _get(session: Session, vendor_id: str, kid: str) -> SigningKey:
    key = session.scalar(
        select(SigningKey).where(SigningKey.vendor_id == vendor_id, SigningKey.kid == kid)
    )
    if key is None:
        raise NotFoundError("signing key", kid)
    return key
