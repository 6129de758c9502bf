"""The web fronts' fixtures: a real server (``live_server``) and Debian's Chromium."""

from tests.integration.web.browser import chromium, page

__all__ = ["chromium", "page"]
