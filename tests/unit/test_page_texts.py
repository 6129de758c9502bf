"""Texts in page templates: ``_()`` and ``gettext()`` answer exactly what Jinja's own
new-style gettext answers, in every language, for every text of the catalogues."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment, StrictUndefined

from licentia.server.web.i18n import LANGUAGES, LOCALE_DIR
from licentia.server.web.rendering import Pages

PAGES = Pages()
TEXTS = ["Log in", "100%% sure", "<b>&</b>", "not a catalogue text"]
with (LOCALE_DIR / "messages.pot").open("rb") as source:
    TEXTS += [m.id for m in read_po(source) if m.id and isinstance(m.id, str)]


def _jinjas_own(lang: str) -> Environment:
    env = Environment(autoescape=True, undefined=StrictUndefined, extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(PAGES.catalogues[lang], newstyle=True)  # type: ignore[attr-defined]
    return env


def _answer(env: Environment, source: str, **values: object) -> str:
    try:
        return env.from_string(source).render(values)
    except (KeyError, ValueError, TypeError) as error:  # a text that needs its variables
        return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("lang", list(LANGUAGES))
@pytest.mark.parametrize(
    ("source", "values"),
    [
        ("{{ _(text) }}", {}),
        ("{{ gettext(text) }}", {}),
        ("{{ _(text, count=3, name='<i>x</i>') }}", {}),
        ("{% trans %}Done: the license is {{ state }}.{% endtrans %}", {"state": "<s>"}),
    ],
)
def test_a_pages_text_is_jinjas_new_style_gettext(lang: str, source: str, values: dict[str, str]):
    reference = _jinjas_own(lang)
    with PAGES.speaking(lang):
        for text in TEXTS:
            ours = _answer(PAGES.env, source, text=text, **values)
            assert ours == _answer(reference, source, text=text, **values), text
            assert ours == _answer(PAGES.env, source, text=text, **values), "asked again"
