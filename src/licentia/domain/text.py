"""Text the service keeps holds no NUL character (U+0000).

PostgreSQL's text cannot store one and SQLite's can: were it left to the database, a
name with a NUL would be kept on one backend and refused on the other. So every front
refuses it alike before any use case sees the text, naming where it was: the API
(``server/api/nul.py``) and the pages (``server/web/forms.py``).
"""

from __future__ import annotations

from licentia.domain.errors import ValidationError

NUL = "\x00"
NUL_REFUSED = "text in a request may not contain the NUL character (U+0000)"


def nul_refused(field: str) -> ValidationError:
    """The refusal of text with a NUL in ``field`` (a part of the request or a form's
    field): 422 ``VALIDATION_FAILED``."""
    return ValidationError(NUL_REFUSED, field=field)
