"""Ticket codes: ``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX``.

24 random symbols from Crockford's base-32 alphabet (120 bits) and one check symbol,
so a typo is refused before any lookup. Reading is forgiving the way Crockford
intends: case is ignored, ``O`` reads as ``0``, ``I`` and ``L`` as ``1``, spaces and
dashes are ignored.

The check: each symbol's value (0-31) is an element of the field GF(32), built on the
primitive polynomial x^5 + x^2 + 1. Read left to right with Horner's rule, the 25
values of a valid code, weighted by the powers x^24 ... x^0, sum to zero. Those
weights are distinct and non-zero (x has order 31 > 25), so one changed symbol, or
two different symbols swapped (neighbours or not), always leaves a non-zero sum.
Luhn mod 32 would not do: it misses the swap of ``0`` and ``Z``.

A format shared by the server (which issues and looks up codes) and the client SDK
(which checks a typed code before it sends or writes anything).
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {symbol: index for index, symbol in enumerate(ALPHABET)}
_ALIASES = {"O": "0", "I": "1", "L": "1"}
DATA_SYMBOLS = 24
_FIELD_POLYNOMIAL = 0b100101  # x^5 + x^2 + 1
GROUP = 5
# What reading takes, as a JSON Schema pattern: 25 symbols of the alphabet or its
# aliases, in either case (every ASCII letter but U), with any dashes and spaces. The
# check symbol is beyond a pattern: a code that matches can still be a typo.
PATTERN = "^[ -]*(?:[0-9A-TV-Za-tv-z][ -]*){25}$"


class TicketCodeError(ValueError):
    """A typed text that cannot be a ticket code; the message says why. ``position``
    names a symbol that is not in the alphabet (counting symbols from 1, dashes and
    spaces skipped); None for a wrong length or check symbol."""

    code = "TICKET_CODE_INVALID"

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


def generate_ticket_code() -> str:
    """Return a fresh, formatted ticket code with its check symbol."""
    # 32 symbols divide 256, so the low five bits of a random byte pick one uniformly,
    # from one call for the whole code instead of one per symbol.
    import secrets  # the client imports this module to check codes, never to make one

    data = "".join(ALPHABET[byte & 31] for byte in secrets.token_bytes(DATA_SYMBOLS))
    return _format(data + check_symbol(data))


def check_symbol(data: str) -> str:
    """The check symbol for ``data`` (already normalised): the one symbol that makes
    the weighted sum of the whole code zero (see the module docstring)."""
    return ALPHABET[_times_x(_weighted_sum(data))]


def _weighted_sum(symbols: str) -> int:
    total = 0
    for symbol in symbols:
        total = _times_x(total) ^ _VALUE[symbol]  # addition in GF(32) is XOR
    return total


def _times_x(value: int) -> int:
    value <<= 1
    return value ^ _FIELD_POLYNOMIAL if value & 0b100000 else value


def normalize_ticket_code(text: str) -> str:
    """Return the canonical form of a typed code.

    Raises TicketCodeError if it has a symbol outside the alphabet (its ``position``
    says which), the wrong length, or a check symbol that does not match. One check
    symbol finds any single typo or swap but cannot say where it is.
    """
    raw = "".join(_ALIASES.get(c, c) for c in text.upper() if c not in "- ")
    wrong = next((i for i, c in enumerate(raw) if c not in _VALUE), None)
    if wrong is not None:
        raise TicketCodeError(
            f"symbol {wrong + 1} ({raw[wrong]!r}) is not used in ticket codes", wrong + 1
        )
    if len(raw) != DATA_SYMBOLS + 1:
        raise TicketCodeError(f"a ticket code has 25 symbols in groups of five, not {len(raw)}")
    if check_symbol(raw[:-1]) != raw[-1]:
        raise TicketCodeError("this ticket code has a typo: its check symbol does not match")
    return _format(raw)


def _format(raw: str) -> str:
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))
