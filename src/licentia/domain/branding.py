"""Vendor branding rules: colours a portal can use without losing legibility.

The portal writes white text on the vendor's primary colour (the header, buttons) and
uses the accent colour for links and focus rings on white. Both must reach WCAG 2.2's
contrast ratio for normal text (4.5:1) against white, or a vendor's choice would make
its own portal unreadable for some of its customers.
"""

from __future__ import annotations

import re

from licentia.domain.errors import ValidationError

DEFAULT_PRIMARY = "#1d4f7a"
DEFAULT_ACCENT = "#9a3412"
MIN_CONTRAST = 4.5
LOGO_TYPES = frozenset({"image/png", "image/svg+xml", "image/jpeg", "image/webp"})
MAX_LOGO_BYTES = 64 * 1024
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


def relative_luminance(colour: str) -> float:
    """WCAG's relative luminance of an ``#rrggbb`` colour (0 black … 1 white)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG's contrast ratio of two colours, 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)))[::-1]
    return (lighter + 0.05) / (darker + 0.05)


def check_colour(value: str, *, field: str) -> str:
    """The colour in lowercase ``#rrggbb``; raises ValidationError (``COLOUR_INVALID`` or
    ``COLOUR_CONTRAST_TOO_LOW``) for another form or one too light to read on white."""
    if not _HEX.match(value):
        raise ValidationError(
            "a colour is written #rrggbb, e.g. #1d4f7a", field=field, code="COLOUR_INVALID"
        )
    ratio = contrast_ratio(value, "#ffffff")
    if ratio < MIN_CONTRAST:
        raise ValidationError(
            f"contrast with white is {ratio:.1f}:1; text needs at least {MIN_CONTRAST}:1",
            field=field,
            code="COLOUR_CONTRAST_TOO_LOW",
        )
    return value.lower()


def check_logo(content: bytes, media_type: str) -> None:
    """Raises ValidationError (``LOGO_INVALID``) for a logo of another type or too large."""
    if media_type not in LOGO_TYPES:
        raise ValidationError(
            "a logo is a PNG, SVG, JPEG or WebP image", field="logo", code="LOGO_INVALID"
        )
    if len(content) > MAX_LOGO_BYTES:
        raise ValidationError(
            f"a logo is at most {MAX_LOGO_BYTES // 1024} KiB", field="logo", code="LOGO_INVALID"
        )
