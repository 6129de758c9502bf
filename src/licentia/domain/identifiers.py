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

import unicodedata

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
