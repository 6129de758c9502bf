"""Filters of list queries: a value outside the known ones is an error, not an empty list."""

from __future__ import annotations

from collections.abc import Iterable

from licentia.domain.errors import ValidationError


def one_of(value: str, allowed: Iterable[str], *, field: str) -> str:
    """``value`` if it is one of ``allowed``; raises ValidationError naming ``field`` and
    listing the allowed values (in the problem's ``allowed`` member) otherwise."""
    choices = list(allowed)
    if value not in choices:
        raise ValidationError(
            f"{field} must be one of {', '.join(choices)}", field=field, allowed=choices
        )
    return value
