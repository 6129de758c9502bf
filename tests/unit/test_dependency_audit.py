"""CI's dependency audit (.ci/audit_dependencies.py) reads pip-audit's JSON report: a
known vulnerability fails the run, and packages the vulnerability service gave no
answer for are named, never passed off as audited (docs/security.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit_dependencies.py"
CLEAN = {"name": "httpx", "version": "0.28.1", "vulns": []}
EDITABLE = {"name": "licentia", "skip_reason": "distribution marked as editable"}
UNREACHED = {
    "name": "jinja2",
    "skip_reason": "Dependency not found on PyPI and could not be audited: jinja2 (3.1.6)",
}
VULNERABLE = {
    "name": "jinja2",
    "version": "3.1.2",
    "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"], "aliases": []}],
}


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_dependencies", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_known_vulnerability_fails_and_names_its_fix(audit, capsys) -> None:
    assert audit.judge([CLEAN, EDITABLE, VULNERABLE], allow_unaudited=True) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (3.1.3)" in out


def test_packages_the_service_did_not_answer_for_are_not_called_audited(audit, capsys) -> None:
    assert audit.judge([CLEAN, EDITABLE, UNREACHED], allow_unaudited=False) == 1
    out = capsys.readouterr().out
    assert "NOT AUDITED" in out and "1 of 2 locked packages (jinja2)" in out
    assert "1 packages audited" in out
    # make test goes on, saying the same.
    assert audit.judge([CLEAN, EDITABLE, UNREACHED], allow_unaudited=True) == 0
    assert "NOT AUDITED" in capsys.readouterr().out


def test_an_audited_environment_passes_and_the_project_itself_is_left_out(audit, capsys) -> None:
    assert audit.judge([CLEAN, EDITABLE], allow_unaudited=False) == 0
    out = capsys.readouterr().out
    assert "NOT AUDITED" not in out and "1 packages audited, 0 with known" in out


def test_a_service_out_of_reach_is_not_audited_rather_than_a_crash(audit, capsys) -> None:
    stderr = (
        "Traceback (most recent call last):\n  ...\nrequests.exceptions.ConnectionError: "
        "HTTPSConnectionPool(host='pypi.org', port=443): Max retries exceeded"
    )
    assert audit.unreachable(stderr, allow_unaudited=True) == 0
    assert "NOT AUDITED: the vulnerability service could not be reached" in capsys.readouterr().out
    assert audit.unreachable(stderr, allow_unaudited=False) == 1
    # Anything else that stops pip-audit fails the run.
    assert audit.unreachable("ValueError: bad requirement", allow_unaudited=True) == 1
