"""Languages: gettext catalogues compiled from the ``.po`` files at start, and the
choice of language for a request (the visitor's switch, else Accept-Language).

English is the source language; German is a catalogue under ``locale/de``. Adding a
language is adding a catalogue and its code to ``LANGUAGES``, not a code change.
"""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = {"en": "English", "de": "Deutsch"}
DEFAULT = "en"
LANGUAGE_COOKIE = "licentia_lang"
LOCALE_DIR = Path(__file__).parent / "locale"


def load_catalogues() -> dict[str, gettext.NullTranslations]:
    """Every language's translations, compiled in memory (a clean clone needs no
    build step for them)."""
    catalogues: dict[str, gettext.NullTranslations] = {DEFAULT: gettext.NullTranslations()}
    for code in LANGUAGES:
        po = LOCALE_DIR / code / "LC_MESSAGES" / "messages.po"
        if code == DEFAULT or not po.exists():
            continue
        with po.open("rb") as source:
            catalogue = read_po(source, locale=code)
        compiled = BytesIO()
        write_mo(compiled, catalogue)
        compiled.seek(0)
        catalogues[code] = gettext.GNUTranslations(compiled)
    return catalogues


def choose_language(chosen: str | None, accept_language: str | None) -> str:
    """The visitor's own choice if it is known, else the best of Accept-Language."""
    if chosen in LANGUAGES:
        return chosen
    for code in _preferred(accept_language or ""):
        if code in LANGUAGES:
            return code
    return DEFAULT


def _preferred(header: str) -> list[str]:
    """Language codes of an Accept-Language header, best first (``de-AT`` → ``de``)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, index, tag.split("-")[0].lower()))
    return [code for _, _, code in sorted(ranked)]
