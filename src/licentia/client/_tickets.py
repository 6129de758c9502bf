"""Ticket codes as the end user types them, checked before anything is sent or written.

The code's last symbol is a check symbol (docs/formats.md, ticket codes): a mistyped
code is refused here, on the device, rather than by License Central (online) or by the
vendor after the air gap (a request file).
"""

from __future__ import annotations

from licentia.client._exceptions import TicketCodeInvalidError
from licentia.formats import tickets

__all__ = ["normalize_ticket_code"]


def normalize_ticket_code(text: str) -> str:
    """The canonical form (``XXXXX-XXXXX-XXXXX-XXXXX-XXXXX``) of a typed ticket code.

    Case, spaces and dashes do not matter, and ``O``, ``I`` and ``L`` read as ``0``,
    ``1`` and ``1``. Raises TicketCodeInvalidError (``status`` None) if the code has the
    wrong length, a symbol outside the alphabet, or a check symbol that does not match.
    """
    try:
        return tickets.normalize_ticket_code(text)
    except tickets.TicketCodeError as error:
        raise TicketCodeInvalidError(
            f"The ticket code is mistyped ({error}). Check it against the code you "
            "received and type it again.",
            status=None,
        ) from error
