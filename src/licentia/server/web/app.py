"""Adding the web fronts to the application: static files, the pages, and error pages
for every path that is a page (an API path keeps its problem+json)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from licentia.domain.errors import (
    LicentiaError,
    NotFoundError,
    RateLimitedError,
    ServerBusyError,
)
from licentia.domain.text import NUL
from licentia.server.mail import MailTemplates, mailer_for
from licentia.server.settings import Settings
from licentia.server.web.console import (
    audit,
    devices,
    jobs,
    keys,
    licenses,
    offline,
    shops,
    staff_users,
    webhooks,
)
from licentia.server.web.console import customers as console_customers
from licentia.server.web.console import dashboard as console_dashboard
from licentia.server.web.console import license_templates as console_templates
from licentia.server.web.console import orders as console_orders
from licentia.server.web.console import products as console_products
from licentia.server.web.console import tickets as console_tickets
from licentia.server.web.console import totp as console_totp
from licentia.server.web.console.frame import LoginNeeded, login_redirect
from licentia.server.web.console.pages import router as console_router
from licentia.server.web.console.password_resets import router as console_resets_router
from licentia.server.web.console.staff import brand_of, staff_of
from licentia.server.web.errors import SENTENCES, Problem, problem_of, status_of, unexpected
from licentia.server.web.i18n import LANGUAGE_COOKIE, LANGUAGES
from licentia.server.web.link_logs import hide_link_tokens
from licentia.server.web.portal import containers as portal_containers
from licentia.server.web.portal import counters as portal_counters
from licentia.server.web.portal import seats as portal_seats
from licentia.server.web.portal import ticket_cloud as portal_ticket_cloud
from licentia.server.web.portal.offline import router as offline_router
from licentia.server.web.portal.pages import router as portal_router
from licentia.server.web.portal.pages import storefront
from licentia.server.web.portal.password_resets import router as portal_resets_router
from licentia.server.web.portal.users import router as portal_users_router
from licentia.server.web.rendering import LICENTIA_BRAND, Pages, pages_of
from licentia.server.web.sessions import Visitor
from licentia.server.web.unsubscribe import router as unsubscribe_router

log = logging.getLogger("licentia.web")
STATIC = Path(__file__).parent / "static"
PAGE_PREFIXES = ("/portal", "/console", "/language")
Handler = Callable[[Request, Exception], Awaitable[Response]]
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "BODY_TOO_LARGE"}
_PORTAL = re.compile(r"/portal/([^/]+)/")
# What a page may load: only this site's scripts and styles (no CDN), inline style
# attributes for the vendor's colours, a logo from this site.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

landing = APIRouter(include_in_schema=False)


@landing.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Where a browser lands: the console's login and how customers find their portal."""
    return pages_of(request).render(request, "home.html")


@landing.get("/favicon.ico")
def favicon() -> FileResponse:
    """The icon a browser asks for by itself (pages name the same one in their head)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@landing.get("/language/{code}")
def switch_language(code: str, request: Request, next: str = "/") -> Response:
    """Remember the visitor's language and go back to the page they were on."""
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, code, max_age=365 * 86400, samesite="lax")
    return response


def install(app: FastAPI, settings: Settings) -> None:
    """Mount the fronts on ``app`` (built by ``create_app``)."""
    app.state.pages = Pages()
    app.state.mailer = mailer_for(settings)
    app.state.mail_templates = MailTemplates(settings.mail_templates_dir)
    app.mount("/static/web", StaticFiles(directory=STATIC), name="web-static")
    app.include_router(landing)
    app.include_router(portal_router)
    app.include_router(offline_router)
    for portal_area in (portal_containers, portal_seats, portal_counters, portal_ticket_cloud):
        app.include_router(portal_area.router)
    app.include_router(portal_users_router)
    app.include_router(portal_resets_router)
    app.include_router(unsubscribe_router)
    app.include_router(console_router)
    app.include_router(console_resets_router)
    app.include_router(console_totp.router)
    for console_area in (
        console_dashboard,
        console_products,
        console_templates,
        console_customers,
        console_orders,
        console_tickets,
    ):
        app.include_router(console_area.router)
    for area in (licenses, devices, offline, keys, webhooks, jobs, shops, staff_users, audit):
        app.include_router(area.router)
    app.add_exception_handler(LoginNeeded, login_redirect)
    _page_errors(app)
    app.add_middleware(PageHeaders)
    hide_link_tokens()


class PageHeaders:
    """Adds the pages' security headers to page answers; passes everything else on
    untouched (a plain ASGI wrapper: the API's requests pay one path check)."""

    _HEADERS = (
        (b"content-security-policy", _CSP.encode()),
        (b"referrer-policy", b"same-origin"),
        (b"cache-control", b"no-store"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {name.lower() for name, _ in headers}
                headers += [pair for pair in self._HEADERS if pair[0] not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def is_page(path: str) -> bool:
    """Whether ``path`` is one of the web fronts' pages (else the API's, or a file's)."""
    return path == "/" or path.startswith(PAGE_PREFIXES)


def _page_errors(app: FastAPI) -> None:
    """Wrap the app's error handlers: a page path gets an error page, the API keeps
    its problem+json answers from ``api/problems.py``."""
    handlers: dict[Any, Any] = app.exception_handlers
    for kind in (LicentiaError, HTTPException, Exception):
        api_handler = handlers.get(kind)
        if api_handler is not None:
            handlers[kind] = _for_pages(api_handler)


def _for_pages(api_handler: Handler) -> Handler:
    async def handle(request: Request, error: Exception) -> Response:
        if not is_page(request.url.path):
            return await api_handler(request, error)
        return await run_in_threadpool(error_page, request, error)

    return handle


def error_page(request: Request, error: Exception, *, framed: bool = True) -> Response:
    """The page for an error no handler turned into a message next to a field; without
    the vendor's frame (``framed``, a read of the database) for a request refused before
    any routing."""
    pages = pages_of(request)
    gettext = pages.gettext_for(request).gettext
    status = 500
    if isinstance(error, LicentiaError):
        problem, status = problem_of(error, gettext), status_of(error)
    elif isinstance(error, HTTPException):
        status = error.status_code
        code = _HTTP_CODES.get(status, f"HTTP_{status}")
        sentence = gettext(SENTENCES[code]) if code in SENTENCES else code
        problem = Problem(code, gettext("This page does not exist.") if status == 404 else sentence)
    else:
        problem = unexpected(error, request.url.path)
        problem = Problem(problem.code, gettext(problem.sentence))
    frame = _frame_of(request) if framed else {}
    try:
        return pages.render(request, "error.html", status_code=status, problem=problem, **frame)
    except Exception:  # the error page itself failed: still never a blank page
        return HTMLResponse(
            f"<!doctype html><title>Error</title><h1>{problem.code}</h1>", status_code=status
        )


def _frame_of(request: Request) -> dict[str, Any]:
    """What the error page keeps of the front it happened on: the vendor's brand, the
    front's navigation and start page (none for an unknown vendor or a failed lookup).
    A path with a NUL names no vendor: it is not looked up (PostgreSQL would refuse it)."""
    path = request.url.path
    if NUL in path:
        return {}
    try:
        portal = _PORTAL.match(path)
        if portal is not None:
            front = storefront(request, portal.group(1))
            return {
                "layout": "portal/base.html",
                "brand": front.brand,
                "front": front,
                "customer": front.customer,
                "start": f"/portal/{front.vendor.slug}/",
            }
        if path.startswith("/console"):
            actor = staff_of(request)
            brand = LICENTIA_BRAND if actor is None else brand_of(request, actor)
            return {"layout": "console/base.html", "brand": brand, "start": "/console/"}
    except NotFoundError:  # no such vendor: nothing to frame the page with
        pass
    except Exception:  # an error page without its frame beats none
        log.warning("no frame for the error page of %s", path, exc_info=True)
    return {}


def refusal_page(scope: Scope, error: RateLimitedError | ServerBusyError) -> Response:
    """The page that refuses a request over a rate limit (429) or beyond its family's
    line (503), with ``Retry-After``. It is answered before any routing and reads
    nothing: the visitor counts as anonymous, so a flood of refused requests costs no
    session lookup."""
    request = Request(scope)
    request.state.visitor = Visitor("refused")
    response = error_page(request, error, framed=False)
    response.headers["Retry-After"] = str(error.details.get("retry_after_seconds", 1))
    for name, value in PageHeaders._HEADERS:
        response.headers[name.decode()] = value.decode()
    return response
