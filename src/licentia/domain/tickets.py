"""Ticket codes: ``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX``.

24 random symbols from Crockford's base-32 alphabet (120 bits) and one check symbol
computed with the Luhn mod-N algorithm, which catches every single mistyped symbol
and every swap of two neighbours, so a typo is refused before any lookup. Reading
is forgiving the way Crockford intends: case is ignored, ``O`` reads as ``0``,
``I`` and ``L`` as ``1``, spaces and dashes are ignored.
"""

from __future__ import annotations

import secrets

from licentia.domain.errors import ValidationError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_ALIASES = {"O": "0", "I": "1", "L": "1"}
DATA_SYMBOLS = 24
GROUP = 5


def generate_ticket_code() -> str:
    """Return a fresh, formatted ticket code with its check symbol."""
    data = "".join(secrets.choice(ALPHABET) for _ in range(DATA_SYMBOLS))
    return _format(data + check_symbol(data))


def check_symbol(data: str) -> str:
    """Luhn mod 32 check symbol for ``data`` (already normalised)."""
    total, factor = 0, 2
    for symbol in reversed(data):
        addend = factor * _VALUE[symbol]
        total += addend // 32 + addend % 32
        factor = 1 if factor == 2 else 2
    return ALPHABET[(32 - total % 32) % 32]


def normalize_ticket_code(text: str) -> str:
    """Return the canonical form of a typed code.

    Raises ValidationError (code ``TICKET_CODE_INVALID``) if it has the wrong length,
    a symbol outside the alphabet, or a check symbol that does not match.
    """
    raw = "".join(_ALIASES.get(c, c) for c in text.upper() if c not in "- ")
    if len(raw) != DATA_SYMBOLS + 1 or any(c not in _VALUE for c in raw):
        raise ValidationError(
            "a ticket code has 25 symbols in groups of five",
            field="code",
            code="TICKET_CODE_INVALID",
        )
    if check_symbol(raw[:-1]) != raw[-1]:
        raise ValidationError(
            "this ticket code has a typo: its check symbol does not match",
            field="code",
            code="TICKET_CODE_INVALID",
        )
    return _format(raw)


def _format(raw: str) -> str:
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))
