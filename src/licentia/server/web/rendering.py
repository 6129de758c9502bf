"""Rendering pages: one Jinja2 environment, the visitor's language, the vendor's brand.

Every page gets ``brand`` (whose portal or console this is), ``lang`` and the
language switch, ``csrf_token`` for its forms and ``visitor``. Text in templates is
marked for translation (``{% trans %}``, ``_()``); the catalogue of the request's
language is the one in force while its template renders.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from babel.dates import format_date, format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from licentia.domain.branding import DEFAULT_ACCENT, DEFAULT_PRIMARY
from licentia.server.tenancy.branding import Branding
from licentia.server.web import csrf
from licentia.server.web.i18n import LANGUAGE_COOKIE, LANGUAGES, choose_language, load_catalogues
from licentia.server.web.sessions import remember_visit, visitor_of

TEMPLATES = Path(__file__).parent / "templates"
LICENTIA_BRAND = Branding("", "Licentia", DEFAULT_PRIMARY, DEFAULT_ACCENT, None, None, False)
_UNTRANSLATED = gettext.NullTranslations()
_catalogue: ContextVar[gettext.NullTranslations] = ContextVar("catalogue", default=_UNTRANSLATED)


def _gettext(message: str) -> str:
    return _catalogue.get().gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return _catalogue.get().ngettext(singular, plural, n)


def _translated(message: str, /, **variables: Any) -> Markup:
    """``_()`` and ``gettext()`` in templates, as Jinja's new-style gettext answers
    them (a translation is markup, and always a format string), made once per
    language and text: a page calls them hundreds of times (a data-label in every
    cell of its rows), and Jinja's own wrappers cost three context calls, a Markup
    and a formatting each time."""
    catalogue = _catalogue.get()
    if variables:  # the variables are escaped, the catalogue's text is trusted
        return Markup(catalogue.gettext(message)) % variables  # noqa: S704
    return _text_in(catalogue, message)


@lru_cache(maxsize=8192)
def _text_in(catalogue: gettext.NullTranslations, message: str) -> Markup:
    return Markup(catalogue.gettext(message)) % {}  # noqa: S704 - as Jinja's own gettext


class Pages:
    """The Jinja environment and the catalogues, built once per application."""

    def __init__(self) -> None:
        self.catalogues = load_catalogues()
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
        self.env.globals["gettext"] = self.env.globals["_"] = _translated
        self.env.globals["languages"] = LANGUAGES
        self.env.filters["quote"] = lambda text: quote(str(text), safe="")

    def language(self, request: Request) -> str:
        return choose_language(
            request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
        )

    def gettext_for(self, request: Request) -> gettext.NullTranslations:
        return self.catalogues[self.language(request)]

    @contextmanager
    def speaking(self, lang: str) -> Iterator[None]:
        """Templates rendered inside the block speak ``lang``."""
        token = _catalogue.set(self.catalogues[lang])
        try:
            yield
        finally:
            _catalogue.reset(token)

    def render(
        self,
        request: Request,
        template: str,
        *,
        brand: Branding = LICENTIA_BRAND,
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        lang = self.language(request)
        visitor = visitor_of(request)
        context = {
            "request": request,
            "brand": brand,
            "lang": lang,
            "visitor": visitor,
            "csrf_token": csrf.csrf_token(request),
            "here": request.url.path,
            "when": lambda value: _when(value, lang),
            "day": lambda value: _day(value, lang),
            **values,
        }
        with self.speaking(lang):
            html = self.env.get_template(template).render(context)
        response = HTMLResponse(html, status_code=status_code)
        response.headers["Content-Language"] = lang
        remember_visit(response, request, visitor)
        return response


def _when(value: datetime | None, lang: str) -> str:
    return "—" if value is None else _moment_text(value, lang)


def _day(value: date | None, lang: str) -> str:
    if value is None:
        return "—"
    return _day_text(value.date() if isinstance(value, datetime) else value, lang)


# Formatted texts are kept once made: Babel costs tens of microseconds a call, and a
# list of 50 to 80 rows formats a day or a time in each (the same days, often).
@lru_cache(maxsize=8192)
def _moment_text(value: datetime, lang: str) -> str:
    return format_datetime(value, "medium", tzinfo=UTC, locale=lang) + " UTC"


@lru_cache(maxsize=4096)
def _day_text(value: date, lang: str) -> str:
    return format_date(value, "medium", locale=lang)


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages
