"""The web fronts' fixtures: a real server (``live_server``), Debian's Chromium, and
an SMTP server that receives what the application sends (``inbox``)."""

from tests.integration.web.browser import chromium, page
from tests.integration.web.inbox import inbox

__all__ = ["chromium", "inbox", "page"]
