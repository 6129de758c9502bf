"""The web fronts' pure rules: language choice, catalogues, branding contrast."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from licentia.domain.branding import check_colour, contrast_ratio
from licentia.domain.errors import ValidationError
from licentia.domain.licenses import LicenseState
from licentia.server.web.i18n import LANGUAGES, LOCALE_DIR, choose_language, load_catalogues
from licentia.server.web.labels import LICENSE_STATES


@pytest.mark.parametrize(
    ("chosen", "header", "language"),
    [
        (None, "de-DE,de;q=0.9,en;q=0.8", "de"),
        (None, "fr-FR, en;q=0.5, de;q=0.7", "de"),
        (None, "", "en"),
        (None, "de;q=0", "en"),
        ("en", "de", "en"),
        ("xx", "de", "de"),
    ],
)
def test_the_language_is_the_visitors_choice_else_the_best_accepted(chosen, header, language):
    assert choose_language(chosen, header) == language


@pytest.mark.parametrize("code", [code for code in LANGUAGES if code != "en"])
def test_every_text_is_translated_in_every_catalogue(code: str):
    with (LOCALE_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalogue = read_po(source)
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    assert untranslated == []
    with (LOCALE_DIR / "messages.pot").open("rb") as source:
        template = {m.id for m in read_po(source) if m.id}
    assert template <= {m.id for m in catalogue if m.id}, "run `make messages` and translate"
    assert load_catalogues()[code].gettext("Log in") != "Log in"


def test_every_license_state_has_a_label():
    assert set(LICENSE_STATES) == {state.value for state in LicenseState}


def test_contrast_is_wcags_ratio():
    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21)
    assert contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(
    ("colour", "code"),
    [
        ("#ffff00", "COLOUR_CONTRAST_TOO_LOW"),
        ("#777777", "COLOUR_CONTRAST_TOO_LOW"),
        ("blue", "COLOUR_INVALID"),
        ("#12345", "COLOUR_INVALID"),
    ],
)
def test_a_colour_text_cannot_be_read_on_is_refused(colour: str, code: str):
    with pytest.raises(ValidationError) as caught:
        check_colour(colour, field="primary_colour")
    assert caught.value.code == code


def test_a_dark_colour_is_kept_in_lowercase():
    assert check_colour("#1D4F7A", field="primary_colour") == "#1d4f7a"
