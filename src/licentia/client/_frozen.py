"""Read-only value objects for the classes an offline license check loads.

A frozen dataclass costs about a millisecond to define, and :mod:`dataclasses` imports
:mod:`inspect` (with ``ast``, ``dis`` and ``tokenize``): a protected application's first
license check in a fresh process paid more for that than for the signature it checks.
:class:`FrozenValue` gives the few behaviours the SDK's values need, as plain methods.

A subclass names its fields in ``_fields`` (usually ``__slots__ = _fields = (...)``),
takes them in that order in its ``__init__`` and sets them with :meth:`_assign`. Its
instances are then read-only (assigning raises AttributeError), compare equal when of the
same class with equal fields, hash by their fields, pickle and copy, and show their fields
in ``repr`` except those named in ``_repr_hidden``.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = ["FrozenValue"]


class FrozenValue:
    """Base of the SDK's read-only values (see the module docstring)."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _repr_hidden: ClassVar[frozenset[str]] = frozenset()

    def _assign(self, *values: object) -> None:
        """Set every field, in the order of ``_fields``."""
        for name, value in zip(self._fields, values, strict=True):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: cannot assign {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, FrozenValue)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        shown = (f"{n}={getattr(self, n)!r}" for n in self._fields if n not in self._repr_hidden)
        return f"{type(self).__qualname__}({', '.join(shown)})"

    def __reduce__(self) -> tuple[type[FrozenValue], tuple[Any, ...]]:
        return type(self), self._values()
