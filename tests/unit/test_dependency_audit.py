"""CI's dependency audit (.ci/audit_dependencies.py) reads pip-audit's JSON report: a
known vulnerability fails the run, and packages the vulnerability service gave no
answer for are named, never passed off as audited (docs/security.md). A package whose
release pip-audit could not ask about is audited from its project's JSON when that
describes the locked release."""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class ProjectIndex:
    """A package index that serves only each project's own JSON, as the build machines'
    index does (a release's ``/pypi/NAME/VERSION/json`` is not found)."""

    def __init__(self, projects: dict[str, dict]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.removeprefix("/pypi/").removesuffix("/json")
                body = json.dumps(projects[name]).encode() if name in projects else b""
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/pypi"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def project(version: str, *vulns: dict) -> dict:
    return {"info": {"version": version}, "vulnerabilities": list(vulns)}


ADVISORY = {"id": "PYSEC-2024-1", "fixed_in": ["3.1.4"], "aliases": [], "withdrawn": None}
WITHDRAWN = {"id": "PYSEC-2020-9", "fixed_in": [], "aliases": [], "withdrawn": "2021-01-01"}


@pytest.fixture(scope="module")
def index() -> Iterator[ProjectIndex]:
    served = ProjectIndex(
        {
            "jinja2": project("3.1.3", ADVISORY),  # the newest release, with an advisory
            "httpx": project("0.28.1", WITHDRAWN),  # the newest release; withdrawn only
            "redis": project("8.2.0", ADVISORY),  # newer than the lock's
        }
    )
    yield served
    served.server.shutdown()


def unasked(name: str) -> dict:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI: {name}"}


def test_a_package_pip_audit_could_not_ask_about_is_audited_from_its_projects_json(
    audit, index, capsys
) -> None:
    locked = {"jinja2": "3.1.3", "httpx": "0.28.1", "redis": "7.4.1", "licentia": "0"}
    dependencies = [unasked("Jinja2"), unasked("httpx"), unasked("redis"), EDITABLE]
    audited = audit.audit_newest_releases(dependencies, locked, index.url)
    assert audit.judge(audited, allow_unaudited=True) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE Jinja2 3.1.3: PYSEC-2024-1 (3.1.4)" in out
    assert "PYSEC-2020-9" not in out  # withdrawn
    # The project's JSON speaks of 8.2.0, not of the locked 7.4.1: redis is not audited.
    assert "1 of 3 locked packages (redis)" in out
    assert "2 packages audited (2 of them from their project's JSON)" in out


def test_a_project_the_index_does_not_know_stays_not_audited(audit, index, capsys) -> None:
    dependencies = [unasked("nowhere")]
    audited = audit.audit_newest_releases(dependencies, {"nowhere": "1.0"}, index.url)
    assert audited == dependencies
    assert audit.judge(audited, allow_unaudited=False) == 1


def test_the_lock_is_read_by_normalized_name(audit, tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("# a comment\nJinja2==3.1.3\nboolean.py==5.0\nruamel_yaml==0.18 ; x\n")
    assert audit.locked_releases(lock) == {
        "jinja2": "3.1.3",
        "boolean-py": "5.0",
        "ruamel-yaml": "0.18",
    }


def test_an_index_out_of_reach_leaves_every_package_not_audited_after_one_try(
    audit, capsys
) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{closed.server_port}/pypi"
    closed.server_close()  # nothing listens there any more: connections are refused
    dependencies = [unasked("jinja2"), unasked("httpx")]
    locked = {"jinja2": "3.1.3", "httpx": "0.28.1"}
    assert audit.audit_newest_releases(dependencies, locked, url) == dependencies
    assert "the package index could not be reached" in capsys.readouterr().out
