"""Helpers for the console's page tests: a logged-in staff member, the object a form
created, the message shown next to a field."""

from __future__ import annotations

import re

from fastapi import FastAPI
from httpx import Response

from tests.factories import VendorHandle
from tests.integration.web.pages import Browser, log_in_staff, staff_user


def console(
    app: FastAPI, vendor: VendorHandle, role: str = "admin", *, language: str = "en"
) -> Browser:
    """A browser logged in to ``vendor``'s console as a new member with ``role``."""
    browser = Browser(app, language=language)
    log_in_staff(browser, vendor, staff_user(vendor, role))
    return browser


def created_id(answer: Response, kind: str) -> str:
    """The id in the address a successful form redirected to (``/console/<kind>/<id>?…``)."""
    location = answer.headers["location"]
    found = re.match(rf"^/console/{kind}/([0-9a-f-]+)\?", location)
    assert found, location
    return found.group(1)


def field_problem(html: str, field: str) -> str:
    """What the page shows next to ``field`` (empty when nothing is wrong with it)."""
    found = re.search(rf'id="f-{re.escape(field)}-problem"[^>]*>(.*?)</p>', html, re.S)
    assert found, f"no problem slot for {field}"
    return found.group(1)
