"""Text in a request holds no NUL character (U+0000) (:mod:`licentia.domain.text`).

It is refused 422 ``VALIDATION_FAILED`` with ``field`` saying where (``path``,
``query`` or ``body``), before any route reads the request: in the path and the query
(``%00``) of every request, a page's included, and in an API request's JSON body, where
the only way to write one is the escape ``\\u0000`` (JSON allows no raw control
character in a string). A page's form is checked once parsed (``web/forms.py``).
"""

from __future__ import annotations

import re

from starlette.types import Scope

from licentia.domain.errors import ValidationError
from licentia.domain.text import NUL, nul_refused

# ``\u0000`` as an escape: after an even number of backslashes (none included), so
# that ``\\u0000`` (a backslash, then the text "u0000") is not taken for one.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def nul_in_target(scope: Scope) -> ValidationError | None:
    """The refusal of a request whose path or query holds a NUL, else None."""
    if NUL in scope["path"]:
        return nul_refused("path")
    query = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return nul_refused("query")
    return None


def nul_in_json(body: bytes) -> ValidationError | None:
    """The refusal of a JSON body with a NUL in one of its strings, else None."""
    if b"\\u0000" in body and _ESCAPED_NUL.search(body):
        return nul_refused("body")
    return None
