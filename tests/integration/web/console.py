"""Helpers of the console's page tests: a browser logged in as staff of a vendor."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from httpx import Response

from tests.factories import VendorHandle
from tests.integration.web.pages import Browser, log_in_staff, staff_user

_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


def staff_browser(app: FastAPI, vendor: VendorHandle, role: str = "admin") -> Browser:
    """A browser logged in to the console as a new staff member with ``role``."""
    browser = Browser(app)
    answer = log_in_staff(browser, vendor, staff_user(vendor, role))
    assert answer.status_code == 303, answer.text
    return browser


def submit_many(browser: Browser, page: str, action: str, data: dict[str, Any]) -> Response:
    """Post a form whose fields may repeat (check boxes: a list of values)."""
    return browser.client.post(action, data={"csrf_token": browser.token(page), **data})


def post_forms(html: str) -> list[str]:
    """Where the page's forms post to (the logout form aside)."""
    return [action for action in _FORM_ACTION.findall(html) if action != "/console/logout"]
