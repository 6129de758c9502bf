"""Device-bound license documents and the signed update that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from joserfc import jwe
from joserfc.jwk import OKPKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.templates import StoredOptions
from licentia.formats.device import state_hash
from licentia.formats.document_types import LICENSE_TYP, UPDATE_TYP
from licentia.server.catalog.models import Template
from licentia.server.catalog.services import unsealed_secret
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import Signer
from licentia.server.licenses.models import License
from licentia.server.licenses.services import Documented, license_claims

SECRET_ALGORITHMS = ["ECDH-ES", "A256GCM"]


class Recipient(Protocol):
    """The device an update is for: a Device, or a value with its columns."""

    @property
    def key_id(self) -> str: ...
    @property
    def fingerprint(self) -> dict[str, Any]: ...
    @property
    def encryption_key(self) -> bytes: ...
    @property
    def seq(self) -> int: ...
    @property
    def status(self) -> str: ...


# A license for the update, with its template's sealed secret data (None: it has none).
Sealed = tuple[Documented, bytes | None]


def bound_claims(
    license_: Documented, device: Recipient, *, issuer: str, now: datetime, secret: str | None
) -> dict[str, Any]:
    """The license's claims bound to one device, with its offline lease."""
    claims = license_claims(license_, issuer=issuer, now=now)
    options = StoredOptions(license_.options)
    lease_until = now + timedelta(days=options.lease_days)
    refresh_after = now + timedelta(days=options.refresh_days)
    ends = [lease_until] + ([license_.valid_until] if license_.valid_until else [])
    claims.update(
        aud=device.key_id,
        cnf={"jkt": device.key_id},
        fingerprint=dict(device.fingerprint),
        lease_until=int(lease_until.timestamp()),
        refresh_after=int(refresh_after.timestamp()),
        valid_until=int(license_.valid_until.timestamp()) if license_.valid_until else None,
        exp=int(min(ends).timestamp()),
    )
    if secret is not None:
        claims["secret_data"] = encrypt_to_device(secret, device.encryption_key)
    return claims


def encrypt_to_device(secret: str, encryption_key: bytes) -> str:
    """JWE (ECDH-ES + A256GCM) that only the device's X25519 key can open."""
    key = OKPKey.import_key(X25519PublicKey.from_public_bytes(encryption_key))
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "cty": "text/plain"}
    return jwe.encrypt_compact(header, secret.encode(), key, algorithms=SECRET_ALGORITHMS)


def build_update(
    session: Session,
    signer: Signer,
    master: MasterKey,
    issuer: str,
    device: Recipient,
    licenses: list[License],
    *,
    removed: list[str],
    now: datetime,
) -> tuple[str, str]:
    """The signed update for ``device`` at its current ``seq``; returns (token, state).
    Reads the secret data of the licenses' templates."""
    secrets = _sealed_secrets(session, {item.template_id for item in licenses})
    sealed: list[Sealed] = [(item, secrets[item.template_id]) for item in licenses]
    return sign_update(signer, master, issuer, device, sealed, removed=removed, now=now)


def sign_update(
    signer: Signer,
    master: MasterKey,
    issuer: str,
    device: Recipient,
    licenses: Sequence[Sealed],
    *,
    removed: list[str],
    now: datetime,
) -> tuple[str, str]:
    """:func:`build_update` for a caller that read the templates' secret data with the
    licenses; returns (token, state)."""
    documents = []
    for license_, secret_encrypted in licenses:
        secret = unsealed_secret(secret_encrypted, master)
        claims = bound_claims(license_, device, issuer=issuer, now=now, secret=secret)
        documents.append(signer.sign(claims, typ=LICENSE_TYP))
    state = state_hash((item.id, item.version) for item, _ in licenses)
    update = {
        "iss": issuer,
        "aud": device.key_id,
        "iat": int(now.timestamp()),
        "seq": device.seq,
        "status": device.status,
        "licenses": documents,
        "removed": removed,
        "state": state,
    }
    return signer.sign(update, typ=UPDATE_TYP), state


def _sealed_secrets(session: Session, template_ids: set[str]) -> dict[str, bytes | None]:
    """The templates' sealed secret data by template id, in one query."""
    if not template_ids:
        return {}
    found = session.execute(
        select(Template.id, Template.secret_encrypted).where(Template.id.in_(template_ids))
    )
    return {template_id: sealed for template_id, sealed in found}
