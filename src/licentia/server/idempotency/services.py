"""Remembering and replaying the answers of creating requests."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.errors import ValidationError
from licentia.server.idempotency.models import IdempotencyRecord

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: dict[str, Any]


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """A hash of what was asked, so a key reused for another request is caught."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_answer(
    session: Session, vendor_id: str, key: str, fingerprint: str
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
    stored = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.vendor_id == vendor_id, IdempotencyRecord.key == key
        )
    )
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise ValidationError(
            "this Idempotency-Key was used for a different request",
            field="Idempotency-Key",
            code="IDEMPOTENCY_KEY_REUSED",
        )
    return StoredAnswer(stored.status_code, stored.body)


def remember_answer(
    session: Session, vendor_id: str, key: str, fingerprint: str, answer: StoredAnswer
) -> None:
    """Store the answer in the caller's transaction: it exists if and only if the
    change it describes was committed."""
    session.add(
        IdempotencyRecord(
            vendor_id=vendor_id,
            key=key,
            request_hash=fingerprint,
            status_code=answer.status_code,
            body=answer.body,
        )
    )
    session.flush()
