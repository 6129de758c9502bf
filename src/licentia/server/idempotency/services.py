"""Remembering and replaying the answers of creating requests.

An answer can hold a secret shown once (a new API key, a ticket code), so it is
stored sealed under the master key: a database leak alone must not reveal it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from licentia.domain.errors import ValidationError
from licentia.server.db.base import utcnow
from licentia.server.idempotency.models import IdempotencyRecord
from licentia.server.keys.master import MasterKey

MAX_KEY_LENGTH = 200
_PURPOSE = "idempotent-answer"


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: dict[str, Any]


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """A hash of what was asked, so a key reused for another request is caught."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_answer(
    session: Session, vendor_id: str, key: str, fingerprint: str, master: MasterKey
) -> StoredAnswer | None:
    """The stored answer for ``key``, or None if it is new.

    Raises ValidationError (``IDEMPOTENCY_KEY_REUSED``) if the key was used for a
    different request, or (``IDEMPOTENCY_KEY_INVALID``) if it is empty or too long.
    """
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"an Idempotency-Key has 1-{MAX_KEY_LENGTH} characters",
            field="Idempotency-Key",
            code="IDEMPOTENCY_KEY_INVALID",
        )
    stored = session.connection().execute(_FIND, {"vendor_id": vendor_id, "key": key}).one_or_none()
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise ValidationError(
            "this Idempotency-Key was used for a different request",
            field="Idempotency-Key",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    sealed = base64.b64decode(stored.body["sealed"])
    body = json.loads(master.decrypt(sealed, purpose=_PURPOSE))
    return StoredAnswer(stored.status_code, body)


def claim_key(session: Session, vendor_id: str, key: str, fingerprint: str) -> IdempotencyRecord:
    """Reserve ``key`` in the caller's transaction, before the work is done.

    A concurrent request with the same key then waits on this row and fails with
    IntegrityError once this transaction commits; retried, it finds the answer.
    Without the claim it would run its own work after this one committed, and answer
    409 for the very object this request created. The claim holds no answer yet and
    nobody else can see it: ``remember_answer`` fills it in the same transaction.
    """
    claim = IdempotencyRecord(
        vendor_id=vendor_id,
        key=key,
        request_hash=fingerprint,
        status_code=0,
        body={},
        created_at=utcnow(),
    )
    # A Core INSERT: the claim is only a row to hold, never an object to track.
    session.connection().execute(
        _CLAIM,
        {name: getattr(claim, name) for name in _CLAIM_COLUMNS},
    )
    return claim


def remember_answer(
    session: Session, claim: IdempotencyRecord, answer: StoredAnswer, master: MasterKey
) -> None:
    """Store the answer on the claimed key: it exists if and only if the change it
    describes was committed."""
    sealed = master.encrypt(json.dumps(answer.body).encode(), purpose=_PURPOSE)
    claim.status_code = answer.status_code
    claim.body = {"sealed": base64.b64encode(sealed).decode()}
    session.connection().execute(
        _ANSWER,
        {
            "claim_vendor_id": claim.vendor_id,
            "claim_key": claim.key,
            "claim_status_code": claim.status_code,
            "claim_body": claim.body,
        },
    )


# Statements built once: they run on every creating request that sends a key.
_FIND = select(
    IdempotencyRecord.request_hash, IdempotencyRecord.status_code, IdempotencyRecord.body
).where(
    IdempotencyRecord.vendor_id == bindparam("vendor_id"),
    IdempotencyRecord.key == bindparam("key"),
)
_CLAIM_COLUMNS = ("vendor_id", "key", "request_hash", "status_code", "body", "created_at")
_CLAIM = insert(IdempotencyRecord)
_ANSWER = (
    update(IdempotencyRecord)
    .where(
        IdempotencyRecord.vendor_id == bindparam("claim_vendor_id"),
        IdempotencyRecord.key == bindparam("claim_key"),
    )
    .values(status_code=bindparam("claim_status_code"), body=bindparam("claim_body"))
)
