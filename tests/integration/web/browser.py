"""Playwright driving Debian's Chromium (``/usr/bin/chromium``; ``make chromium``
installs it): no browser download, ever. Screenshots go to ``var/screenshots/``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[3] / "var" / "screenshots"
WIDTHS = {"desktop": 1280, "phone": 390}


# Module scope, not session: Playwright's sync API keeps an event loop running on the
# thread while it is open, and the tests after the browser's module call asyncio.run().
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = "Debian's Chromium is missing: run `make chromium`"
        if os.environ.get("CI") or os.environ.get("LICENTIA_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    """A fresh browser context (its own cookies) in English at desktop width."""
    context = chromium.new_context(
        locale="en-GB", viewport={"width": WIDTHS["desktop"], "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def screenshot(page: Page, name: str) -> Path:
    """Keep a full-page screenshot of what the page shows now (a CI artefact)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"] if page.viewport_size else 0
    safe = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    path = SCREENSHOTS / f"{safe}-{width}px.png"
    page.screenshot(path=str(path), full_page=True)
    return path
