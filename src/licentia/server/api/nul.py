"""Text in an API request holds no NUL character (U+0000).

PostgreSQL's text cannot store one, and SQLite's can: were it left to the database, a
name with a NUL would be kept on one backend and refused on the other. So it is
refused on every backend alike, 422 ``VALIDATION_FAILED`` with ``field`` saying
where (``path``, ``query`` or ``body``), before any route reads the request: in the
path and the query (``%00``), and in a JSON body, where the only way to write one is
the escape ``\\u0000`` (JSON allows no raw control character in a string).
"""

from __future__ import annotations

import re

from starlette.types import Scope

from licentia.domain.errors import ValidationError

# ``\u0000`` as an escape: after an even number of backslashes (none included), so
# that ``\\u0000`` (a backslash, then the text "u0000") is not taken for one.
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
MESSAGE = "text in a request may not contain the NUL character (U+0000)"


def nul_in_target(scope: Scope) -> ValidationError | None:
    """The refusal of a request whose path or query holds a NUL, else None."""
    if "\x00" in scope["path"]:
        return ValidationError(MESSAGE, field="path")
    if b"%00" in scope.get("query_string", b""):
        return ValidationError(MESSAGE, field="query")
    return None


def nul_in_json(body: bytes) -> ValidationError | None:
    """The refusal of a JSON body with a NUL in one of its strings, else None."""
    if b"\\u0000" in body and _ESCAPED_NUL.search(body):
        return ValidationError(MESSAGE, field="body")
    return None
