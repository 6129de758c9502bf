"""What every page's form must pass before its handler reads it: the CSRF check
(``csrf.py``), and text without a NUL character (:mod:`licentia.domain.text`), which
one database would store and the other refuse. Each page router takes
``FORM_CHECKS`` as its dependencies, so no form can be added without them.

The path and the query of a page are checked before any routing, with the API's
(``server/api/nul.py``); a form is checked here, once parsed, so that a file of a
multipart form (a request file, a logo) may hold any bytes while its text fields may not.
"""

from __future__ import annotations

from fastapi import Depends, Request

from licentia.domain.text import NUL, nul_refused
from licentia.server.web.csrf import FORM_TYPES, check_csrf


async def refuse_nul(request: Request) -> None:
    """A router dependency: refuse a form with a NUL in a field's name or text, naming
    the field (422 ``VALIDATION_FAILED``)."""
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return
    form = await request.form()
    for name, value in form.multi_items():
        if NUL in name or (isinstance(value, str) and NUL in value):
            raise nul_refused(name.replace(NUL, "") or "form")


FORM_CHECKS = [Depends(check_csrf), Depends(refuse_nul)]
