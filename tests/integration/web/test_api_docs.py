"""/docs in a real browser: the bundled Swagger UI reads the OpenAPI 3.1 document and
lists the API's operations, with no request leaving for a CDN."""

from __future__ import annotations

from playwright.sync_api import Page, Request, expect

from tests.integration.web.browser import screenshot


def test_the_interactive_docs_list_the_operations(page: Page, live_server: str):
    elsewhere: list[str] = []

    def note(request: Request) -> None:
        if not request.url.startswith(live_server) and not request.url.startswith("data:"):
            elsewhere.append(request.url)

    page.on("request", note)
    page.goto(f"{live_server}/docs")
    operations = page.locator(".opblock-summary-path")
    # A 1.5 MB script parsing a large document: generous on a busy machine.
    expect(operations.filter(has_text="/api/v1/customers").first).to_be_visible(timeout=90_000)
    expect(page.get_by_text("Unable to render this definition")).to_have_count(0)
    assert operations.count() > 20
    screenshot(page, "api-docs")
    assert elsewhere == []
