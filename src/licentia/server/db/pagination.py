"""Cursor pagination by a unique, ordered key: usually the id (time-ordered UUIDv7), or
another ordered column such as an audit chain's ``seq``."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, TypeVarTuple

from sqlalchemy import BigInteger, Integer, Row, Select, SmallInteger
from sqlalchemy.orm import InstrumentedAttribute, Session

from licentia.domain.errors import ValidationError

T = TypeVar("T")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")
MAX_LIMIT = 200
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class Page(Generic[T]):
    """``items``, and the cursor that continues after them (None: the last page).
    ``after`` holds the cursor after each item, so that a page can be cut short."""

    items: Sequence[T]
    next_cursor: str | None
    after: Sequence[str] = ()

    def first(self, count: int) -> Page[T]:
        """The page cut to its first ``count`` items, continuing after the last of
        them (the page itself when it has no more, or cannot be cut)."""
        if count >= len(self.items) or count < 1 or len(self.after) != len(self.items):
            return self
        return Page(self.items[:count], self.after[count - 1], self.after[:count])


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
    query = _after(query, key, cursor, limit)
    return _page(list(session.scalars(query)), key, limit)


def paginate_rows(
    session: Session,
    query: Select[*Ts],
    key: InstrumentedAttribute[Any],
    *,
    cursor: str | None,
    limit: int,
) -> Page[Row[*Ts]]:
    """``paginate`` for a query of columns (``key`` among them): its items are rows."""
    query = _after(query, key, cursor, limit)
    return _page(list(session.execute(query)), key, limit)


def _after(
    query: Select[*tuple[Any, ...]], key: InstrumentedAttribute[Any], cursor: str | None, limit: int
) -> Select[*tuple[Any, ...]]:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if cursor:
        value = _typed(key, _decode(cursor))
        if value is not None:
            query = query.where(key > value)
    return query.order_by(key).limit(limit + 1)


def _page(rows: list[R], key: InstrumentedAttribute[Any], limit: int) -> Page[R]:
    more = len(rows) > limit
    items = rows[:limit]
    after = [_encode(str(getattr(item, key.key))) for item in items]
    return Page(items, after[-1] if more else None, after)


def _encode(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).rstrip(b"=").decode()


def _typed(key: InstrumentedAttribute[Any], value: str) -> Any:
    """The cursor as the key's type (PostgreSQL will not compare a bigint with text);
    None for a number below every value of the key's column (the first page)."""
    if key.type.python_type is not int:
        return value
    try:
        number = int(value)
    except ValueError as exc:
        raise ValidationError("malformed cursor", field="cursor") from exc
    # A cursor is a 64-bit number at most: SQLite cannot even bind a larger one, where
    # PostgreSQL would refuse it. Every cursor this API made fits.
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValidationError("malformed cursor", field="cursor")
    # A narrower column (a seat's number) cannot hold every such number, and
    # PostgreSQL refuses to compare it with one out of its range: beyond its largest
    # value nothing comes after, below its smallest everything does.
    low, high = _range(key)
    return min(number, high) if number >= low else None


def _range(key: InstrumentedAttribute[Any]) -> tuple[int, int]:
    for kind, bits in ((BigInteger, 64), (SmallInteger, 16), (Integer, 32)):
        if isinstance(key.type, kind):
            return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return _INT64_MIN, _INT64_MAX


def _decode(cursor: str) -> str:
    """The key value in ``cursor``; ValidationError unless the cursor is exactly what
    ``_encode`` makes of a printable value. A lenient decoder would turn garbage into
    some other page (or into a NUL byte that PostgreSQL refuses with a 500)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = base64.b64decode(padded, altchars=b"-_", validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValidationError("malformed cursor", field="cursor") from exc
    if not value.isprintable() or _encode(value) != cursor:
        raise ValidationError("malformed cursor", field="cursor")
    return value
