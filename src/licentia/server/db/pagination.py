"""Cursor pagination by id: ids are time-ordered UUIDv7, so id order is creation order."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

from licentia.domain.errors import ValidationError

T = TypeVar("T")
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def paginate(
    session: Session,
    query: Select[T],
    key: InstrumentedAttribute[Any],
    *,
    cursor: str | None,
    limit: int,
) -> Page[T]:
    """One page of ``query`` ordered by ``key``, starting after ``cursor``.

    Raises ValidationError (field ``cursor`` or ``limit``) for a malformed cursor or
    a limit outside 1..200.
    """
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if cursor:
        query = query.where(key > _decode(cursor))
    rows = list(session.scalars(query.order_by(key).limit(limit + 1)))
    more = len(rows) > limit
    items = rows[:limit]
    next_cursor = _encode(str(getattr(items[-1], key.key))) if more else None
    return Page(items, next_cursor)


def _encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).rstrip(b"=").decode()


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("malformed cursor", field="cursor") from exc
