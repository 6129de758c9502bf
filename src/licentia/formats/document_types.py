"""The ``typ`` header of every signed document Licentia makes or reads.

A verifier checks ``typ`` before anything else, so that a document made for one
purpose can never be passed off as another (docs/formats.md, docs/device-protocol.md,
docs/cloud.md). Every module that signs or verifies names the type from here.
"""

from __future__ import annotations

from typing import Final

# Made by the server, signed with the vendor's key.
LICENSE_TYP: Final = "licentia-license+jwt"
UPDATE_TYP: Final = "licentia-update+jwt"
ACCESS_TYP: Final = "licentia-access+jwt"
SEAT_TYP: Final = "licentia-seat+jwt"
BORROW_TYP: Final = "licentia-borrow+jwt"

# Made by a device, signed with its own key.
REQUEST_TYP: Final = "licentia-device-request+jwt"
RECEIPT_TYP: Final = "licentia-receipt+jwt"
RETURN_TYP: Final = "licentia-return+jwt"
