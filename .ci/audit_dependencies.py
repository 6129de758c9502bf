"""Audit the locked dependencies (requirements.lock, what ``make install`` installs)
with pip-audit and say plainly what was audited.

pip-audit exits 0 with "No known vulnerabilities found" even when the vulnerability
service answered for none of the packages (each is then only "skipped"), so its exit
status alone cannot tell an audited environment from an unaudited one. This reads its
JSON report instead:

- a known vulnerability in any package: listed, exit 1;
- packages the service could not be asked about (unreachable, or a package index
  without per-release data), or none at all (pip-audit stops without a report when
  the service cannot be reached): NOT AUDITED, exit 1, unless ``--allow-unaudited``
  is given (``make test`` gives it: the run must not depend on a service outside the
  project, but its log says loudly that the audit did not happen);
- otherwise: how many packages were audited, exit 0.

pip-audit asks PyPI about each release (``/pypi/NAME/VERSION/json``). A package index
that serves only each project's own JSON (``/pypi/NAME/json``), as the project's build
machines' does, answers none of those; but a project's JSON carries the advisories of
its newest release, the very data pip-audit reads. So a package pip-audit could not
ask about is audited from its project's JSON when the locked release is the newest
one, and stays NOT AUDITED otherwise.

Usage: python .ci/audit_dependencies.py [--allow-unaudited]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

# What requests says when it cannot reach the service at all.
NETWORK_ERRORS = ("requests.exceptions.", "Max retries exceeded", "NameResolutionError")
LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"
PYPI = "https://pypi.org/pypi"
# Every release in the lock is pinned: pip-audit reads them as they are, without
# resolving them again (--no-deps) or installing them anywhere (--disable-pip).
COMMAND = [
    "-m",
    "pip_audit",
    "--requirement",
    str(LOCK),
    "--no-deps",
    "--disable-pip",
    "--progress-spinner",
    "off",
    "-f",
    "json",
]


def main(argv: list[str]) -> int:
    allow_unaudited = "--allow-unaudited" in argv
    with tempfile.TemporaryDirectory() as folder:
        report_path = Path(folder) / "audit.json"
        done = subprocess.run(
            [sys.executable, *COMMAND, "-o", str(report_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if not report_path.exists():
            return unreachable(done.stderr, allow_unaudited)
        report = json.loads(report_path.read_text())
    dependencies = audit_newest_releases(report["dependencies"], locked_releases(LOCK), PYPI)
    return judge(dependencies, allow_unaudited)


def locked_releases(lock: Path) -> dict[str, str]:
    """The lock's releases by normalized project name (PEP 503)."""
    pins = (line.split(";")[0].strip() for line in lock.read_text().splitlines())
    return {
        normalized(name): version
        for name, _, version in (pin.partition("==") for pin in pins if "==" in pin)
    }


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def audit_newest_releases(
    dependencies: list[dict], locked: dict[str, str], index: str
) -> list[dict]:
    """``dependencies`` (pip-audit's report), each one pip-audit could not ask about
    replaced by its audit from its project's JSON where that describes the locked release.
    The first is asked alone: an index out of reach costs one timeout, not one each."""
    asked = [d for d in dependencies if _unasked(d) and normalized(d["name"]) in locked]
    with httpx.Client(timeout=15, follow_redirects=True) as client:

        def ask(dependency: dict) -> list[dict] | None:
            version = locked[normalized(dependency["name"])]
            return newest_release_vulns(client, index, dependency["name"], version)

        def ask_quietly(dependency: dict) -> list[dict] | None:
            try:
                return ask(dependency)
            except httpx.TransportError:
                return None

        try:
            first = [ask(dependency) for dependency in asked[:1]]
        except httpx.TransportError as error:
            print(f"the package index could not be reached ({error!r})")
            return dependencies
        with ThreadPoolExecutor(8) as pool:
            answers = first + list(pool.map(ask_quietly, asked[1:]))
    audited = {
        id(dependency): {
            "name": dependency["name"],
            "version": locked[normalized(dependency["name"])],
            "vulns": vulns,
            "source": "project JSON",
        }
        for dependency, vulns in zip(asked, answers, strict=True)
        if vulns is not None
    }
    return [audited.get(id(dependency), dependency) for dependency in dependencies]


def _unasked(dependency: dict) -> bool:
    return "skip_reason" in dependency and "editable" not in dependency["skip_reason"]


def newest_release_vulns(
    client: httpx.Client, index: str, name: str, version: str
) -> list[dict] | None:
    """The advisories PyPI lists for ``name`` ``version``, in pip-audit's form, read from
    the project's JSON; None when that describes another release or is not found or
    not readable. Withdrawn advisories are left out, as pip-audit leaves them out.
    Raises httpx.TransportError when the index cannot be reached."""
    try:
        answer = client.get(f"{index}/{normalized(name)}/json")
        answer.raise_for_status()
        project = answer.json()
        if project["info"]["version"] != version:
            return None
        return [
            {
                "id": vuln["id"],
                "fix_versions": vuln.get("fixed_in") or [],
                "aliases": vuln.get("aliases") or [],
            }
            for vuln in project.get("vulnerabilities") or []
            if not vuln.get("withdrawn")
        ]
    except (httpx.HTTPStatusError, ValueError, KeyError, TypeError):
        return None


def unreachable(stderr: str, allow_unaudited: bool) -> int:
    """pip-audit stopped without a report: the service could not be reached at all
    (no answer, no name resolution, a refused proxy), or something else went wrong."""
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no message"
    if not any(mark in stderr for mark in NETWORK_ERRORS):
        print(f"pip-audit failed:\n{stderr}", file=sys.stderr)
        return 1
    print(f"NOT AUDITED: the vulnerability service could not be reached ({last})")
    if not allow_unaudited:
        print(
            "failing: run where PyPI's vulnerability data is reachable, or pass --allow-unaudited"
        )
        return 1
    return 0


def judge(dependencies: list[dict], allow_unaudited: bool) -> int:
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if "skip_reason" in d]
    unaudited = [d for d in skipped if "editable" not in d["skip_reason"]]
    audited = len(dependencies) - len(skipped)
    from_projects = sum(1 for d in dependencies if d.get("source") == "project JSON")
    for dependency in vulnerable:
        for vuln in dependency["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed release"
            print(
                f"VULNERABLE {dependency['name']} {dependency['version']}: {vuln['id']} ({fixed})"
            )
    if unaudited:
        names = ", ".join(d["name"] for d in unaudited)
        print(
            f"NOT AUDITED: the vulnerability service gave no answer for {len(unaudited)} of "
            f"{len(dependencies) - len(skipped) + len(unaudited)} locked packages ({names}); first reason: "
            f"{unaudited[0]['skip_reason']}"
        )
    detail = f" ({from_projects} of them from their project's JSON)" if from_projects else ""
    print(
        f"pip-audit: {audited} packages audited{detail}, {len(vulnerable)} with known vulnerabilities"
    )
    if vulnerable:
        return 1
    if unaudited and not allow_unaudited:
        print(
            "failing: run where PyPI's vulnerability data is reachable, or pass --allow-unaudited"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
