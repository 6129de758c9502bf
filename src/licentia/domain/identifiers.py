"""Identifiers that vendors' systems send and people read: external customer and order
ids, order line ids.

An identifier is stored in Unicode normal form C, so that the same text typed on two
systems (a precomposed "é" or "e" and a combining accent) is one identifier. Characters
no one can see or that change how the text around them is shown are refused: control
characters, format characters (bidirectional overrides and isolates, zero-width spaces
and joiners, the byte-order mark), surrogates, and line or paragraph separators. They
let two identifiers look alike on screen while differing, or one show as another.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import cache

from licentia.domain.errors import IdentifierInvalidError

_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def clean_identifier(value: str, *, field: str) -> str:
    """``value`` in NFC; raises IdentifierInvalidError (naming ``field`` and the
    character's code point) if it holds a character refused above."""
    text = unicodedata.normalize("NFC", value)
    if not text.isprintable():  # printable text holds none of them: the common case
        for char in text:
            if unicodedata.category(char) in _REFUSED_CATEGORIES:
                raise IdentifierInvalidError(
                    f"{field} holds an invisible or control character (U+{ord(char):04X})",
                    field=field,
                )
    return text


@cache
def identifier_pattern() -> str:
    """The JSON Schema pattern (ECMA-262) of the identifiers ``clean_identifier`` takes:
    none of the characters it refuses. Built from the Unicode tables that check uses,
    once per process (a scan of every code point takes a fraction of a second).

    Surrogates are left out of it: a lone one is no character, and the regular
    expression engines that work on Unicode text (Rust's, which validators use) refuse
    a class that names them. ``clean_identifier`` still refuses one a JSON text holds.
    """
    named = _REFUSED_CATEGORIES - {"Cs"}
    ranges: list[str] = []
    start: int | None = None
    for point in range(sys.maxunicode + 2):
        refused = point <= sys.maxunicode and unicodedata.category(chr(point)) in named
        if refused and start is None:
            start = point
        elif not refused and start is not None:
            ranges.append(_char_range(start, point - 1))
            start = None
    return f"^[^{''.join(ranges)}]*$"


def _char_range(first: int, last: int) -> str:
    return _written(first) if first == last else f"{_written(first)}-{_written(last)}"


def _written(point: int) -> str:
    """A code point inside a class: a \\u escape in the BMP (control characters among
    them, which not every reader of the document keeps); above it the character itself,
    since ECMA-262 has no escape that Python's ``re`` reads there too (JSON carries it as
    a surrogate pair, a Unicode-aware pattern reads one character)."""
    return f"\\u{point:04X}" if point <= 0xFFFF else chr(point)
