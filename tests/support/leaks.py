"""Finding secrets in what a server wrote: the check of the log tests."""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote


def spellings(secret: str) -> set[str]:
    """The ways a log line could carry ``secret``: as it is, URL-encoded (an address
    in the access log), escaped in JSON; all compared without case (a ticket's code
    is typed in either)."""
    return {
        form.lower()
        for form in (secret, quote(secret, safe=""), quote(secret), json.dumps(secret)[1:-1])
    }


def leaks(written: str, secrets: Iterable[str]) -> list[str]:
    """The ``secrets`` that appear in ``written``, in any of their :func:`spellings`."""
    text = written.lower()
    return [secret for secret in secrets if any(form in text for form in spellings(secret))]
