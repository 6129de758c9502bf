"""Mailed links carry their secret token in the address (an invitation, a password
reset), and uvicorn's access log writes every address. This filter cuts the token out
of those lines, so whoever reads the log cannot follow a link that is still valid."""

from __future__ import annotations

import logging
import re

ACCESS_LOGGER = "uvicorn.access"
# The pages that take a mailed token as the last part of their address.
_LINK = re.compile(
    r"^(/console/password|/console/reset/[^/?]+|/portal/[^/?]+/(?:welcome|reset))/[^/?]+"
)
HIDDEN = "[token]"


def without_tokens(path: str) -> str:
    """``path`` with the token of a mailed link replaced by ``[token]``."""
    return _LINK.sub(rf"\1/{HIDDEN}", path)


class LinkTokenFilter(logging.Filter):
    """Rewrites the path of an access log record (uvicorn logs it as the third of the
    record's arguments: client, method, path, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], without_tokens(args[2]), *args[3:])
        return True


_FILTER = LinkTokenFilter()


def hide_link_tokens() -> None:
    """Put the filter on the access log (once, however many apps are built)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
