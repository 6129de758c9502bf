"""Every signed document's ``typ`` is named in one module, formats/document_types.py:
a verifier that spelled one of them again could drift from the signer unnoticed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from licentia.formats import document_types

SOURCE = Path(document_types.__file__).resolve().parents[1]
TYP = re.compile(r"^licentia-[a-z-]+\+jwt$")


def typ_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and TYP.match(node.value)
    ]


def test_no_module_but_document_types_spells_a_typ() -> None:
    spelled = {
        f"{path.relative_to(SOURCE)}: {typ}"
        for path in sorted(SOURCE.rglob("*.py"))
        if path.name != "document_types.py"
        for typ in typ_literals(path)
    }
    assert spelled == set()


def test_every_typ_is_distinct() -> None:
    typs = [value for name, value in vars(document_types).items() if name.endswith("_TYP")]
    assert len(typs) == len(set(typs)) == 8
