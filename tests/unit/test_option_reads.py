"""An option's default is written once, in ``TemplateOptions``: code that reads a
stored option goes through ``StoredOptions`` instead of ``options.get(name, default)``,
which would type the default a second time (and could disagree with it)."""

from __future__ import annotations

import ast
from pathlib import Path

import licentia
from licentia.domain.templates import TemplateOptions

SOURCE = Path(licentia.__file__).resolve().parent
OPTIONS = set(TemplateOptions.model_fields)


def defaulted_option_reads(source: str) -> list[tuple[int, str]]:
    """The ``x.get("<option>", <default>)`` calls in ``source``: (line, option)."""
    return [
        (node.lineno, node.args[0].value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and len(node.args) == 2
        and isinstance(node.args[0], ast.Constant)
        and node.args[0].value in OPTIONS
    ]


def test_no_option_default_is_typed_again() -> None:
    reads = [
        f"{path.relative_to(SOURCE)}:{line} {option}"
        for path in sorted(SOURCE.rglob("*.py"))
        for line, option in defaulted_option_reads(path.read_text())
    ]
    assert reads == []


def test_the_check_sees_a_default_typed_again() -> None:
    source = 'days = options.get("refresh_days", 7)\nname = row.get("name", "")\n'
    assert defaulted_option_reads(source) == [(1, "refresh_days")]
