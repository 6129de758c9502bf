"""Fingerprint tolerance: how many recorded factors must still match (k of n).

Shared by the client (checks offline) and the server (checks on every request), so
both apply the same rule:

- ``strict``: every recorded factor;
- ``medium``: all but one (at least one) — a new network card or disk is tolerated;
- ``loose``: at least half, rounded up (at least one);
- ``k`` of ``n``: at least ``k`` of the recorded factors.

A factor counts as matching when it is present on both sides with the same hash. An
empty recorded fingerprint never matches: it would vouch for any machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def required_matches(tolerance: Mapping[str, Any], recorded: int) -> int:
    """How many of ``recorded`` factors must match under ``tolerance`` (a template's
    ``fingerprint_tolerance`` option: ``{"preset": ...}`` or ``{"k": k, "n": n}``).

    With nothing recorded, one match is required, which cannot happen: never a match.
    """
    if recorded <= 0:
        return 1
    if tolerance.get("k") is not None:
        return min(int(tolerance["k"]), recorded)
    preset = tolerance.get("preset") or "medium"
    if preset == "strict":
        return recorded
    if preset == "loose":
        return max(1, math.ceil(recorded / 2))
    if preset == "medium":
        return max(1, recorded - 1)
    raise ValueError(f"unknown fingerprint tolerance {preset!r}")


def matching_factors(recorded: Mapping[str, str], presented: Mapping[str, str]) -> int:
    return sum(1 for name, digest in recorded.items() if presented.get(name) == digest)


def fingerprint_matches(
    recorded: Mapping[str, str], presented: Mapping[str, str], tolerance: Mapping[str, Any]
) -> bool:
    """True if ``presented`` matches ``recorded`` closely enough under ``tolerance``."""
    return matching_factors(recorded, presented) >= required_matches(tolerance, len(recorded))
