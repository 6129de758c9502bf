"""Every link from the README or docs/ to a heading of a page (``page.md#anchor``)
reaches a heading that exists, as GitHub names its anchors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([\w./-]*\.md)?#([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors: the heading in lower case, punctuation dropped, spaces as dashes."""
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links() -> list[tuple[str, Path, str]]:
    found = []
    for page in PAGES:
        for target, anchor in LINK.findall(page.read_text(encoding="utf-8")):
            found.append((page.name, (page.parent / target) if target else page, anchor))
    return found


@pytest.mark.parametrize(("source", "target", "anchor"), links())
def test_a_link_to_a_heading_finds_it(source: str, target: Path, anchor: str):
    assert target.exists(), f"{source} links to {target.name}, which does not exist"
    assert anchor in anchors(target), f"{source} links to {target.name}#{anchor}: no such heading"
