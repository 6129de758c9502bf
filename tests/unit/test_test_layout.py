"""The tests stand on their own: no test imports the benchmarks. What both need to
run Licentia for real (server processes, throwaway databases) is in tests/support,
which bench/ uses too, so there is one implementation and the dependency points one
way."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.append(node.module)
    return modules


def test_no_test_imports_the_benchmarks() -> None:
    offenders = [
        f"{path.relative_to(TESTS)}: {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for module in imported_modules(path)
        if module == "bench" or module.startswith("bench.")
    ]
    assert offenders == []


def test_the_check_would_see_an_import_of_the_benchmarks(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text("import os\nfrom bench.server import prepare\n")
    assert imported_modules(sample) == ["os", "bench.server"]
