"""The ``licentia`` command's layout: the end user's commands and ``--help`` load
neither License Central nor its dependencies, and the server's commands, named lazily,
are the commands their help line says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from licentia.cli.lazy import LazyCommand
from licentia.cli.main import COMMANDS as ROOT
from licentia.cli.server.admin import COMMANDS as ADMIN

# (Not pydantic: recent versions of typer use it themselves.)
SERVER_STACK: tuple[str, ...] = ("licentia.server", "licentia.domain", "sqlalchemy")
SERVER_STACK += ("fastapi", "alembic", "uvicorn", "argon2", "psycopg", "starlette")
SERVER_STACK += ("pydantic_settings",)
PROBE = """
import sys
from {module} import {app}
try:
    {app}(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sys.modules), file=sys.stderr)
"""


def modules_loaded_by(module: str, app: str, *args: str) -> list[str]:
    probe = PROBE.format(module=module, app=app)
    result = subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True
    )
    assert "Usage" in result.stdout, result.stdout + result.stderr
    return result.stderr.split()


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["device", "--help"],
        ["device", "status", "--help"],
        ["device", "activate", "--help"],
        ["admin", "--help"],
        ["admin", "offline", "process", "--help"],
        ["admin", "import", "orders", "--help"],
    ],
    ids=" ".join,
)
def test_licentia_help_and_the_device_commands_load_no_server_code(args: list[str]) -> None:
    loaded = modules_loaded_by("licentia.cli.main", "app", *args)
    assert [m for m in loaded if m.startswith(SERVER_STACK)] == []


def test_the_wizard_loads_no_server_code() -> None:
    loaded = modules_loaded_by("licentia.cli.wizard", "wizard", "--help")
    assert [m for m in loaded if m.startswith(SERVER_STACK)] == []


@pytest.mark.parametrize(("name", "lazy"), [*ROOT.items(), *ADMIN.items()], ids=[*ROOT, *ADMIN])
def test_each_lazily_named_command_is_the_command_its_help_line_describes(
    name: str, lazy: LazyCommand
) -> None:
    command = lazy.load(name)
    assert command.name == name
    first_paragraph = (command.help or "").strip().split("\n\n")[0]
    assert " ".join(first_paragraph.split()) == lazy.help
