"""``pip install licentia[cli]`` without the server extra gives the end user working
tools: the wheel is built, installed into a fresh virtual environment with only the
``cli`` extra, and its wizard and device commands run against a real License Central.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def end_user_bin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The ``bin`` folder of a fresh venv holding the wheel with the ``cli`` extra only."""
    root = tmp_path_factory.mktemp("cli-install")
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    (wheel,) = wheels.glob("licentia-*.whl")
    venv.EnvBuilder(with_pip=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    install = [str(bin_dir / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run([*install, "install", f"{wheel}[cli]"], check=True)
    yield bin_dir


def run(bin_dir: Path, *args: str, store: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LICENTIA_", "PYTHON"))}
    env["LICENTIA_STORE"] = str(store)
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_cli_extra_installs_without_the_server(end_user_bin: Path) -> None:
    probe = "import importlib.util as u; print([m for m in ('sqlalchemy', 'fastapi', "
    probe += "'uvicorn', 'alembic', 'argon2') if u.find_spec(m)])"
    found = subprocess.run(
        [str(end_user_bin / "python"), "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"
    helped = subprocess.run(
        [str(end_user_bin / "licentia"), "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "device" in helped.stdout, helped.stderr
    server_only = subprocess.run(
        [str(end_user_bin / "licentia"), "admin", "vendor", "list"], capture_output=True, text=True
    )
    assert server_only.returncode == 6
    assert "licentia[server]" in server_only.stderr and "Traceback" not in server_only.stderr


def test_the_wizard_and_the_device_commands_run_against_license_central(
    end_user_bin: Path, vendors, live_server, tmp_path: Path
) -> None:
    vendor = vendors.create()
    template = vendor.template({"delivery": "device"})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    at = ["--server", live_server, "--vendor", vendor.slug]
    store = tmp_path / "store"

    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    refused = run(end_user_bin, "licentia", "device", "activate", typo, *at, store=store)
    assert refused.returncode == 2 and "TICKET_CODE_INVALID" in refused.stderr

    wizard = run(
        end_user_bin, "licentia-activate", "--ticket", code, "--mode", "online", *at, store=store
    )
    assert wizard.returncode == 0, wizard.stdout + wizard.stderr
    assert "Activated" in wizard.stdout

    status = run(end_user_bin, "licentia", "device", "status", *at, "--json", store=store)
    assert status.returncode == 0, status.stderr
    (held,) = json.loads(status.stdout)["licenses"]
    assert vendor.ok("GET", f"/licenses/{held['license']}")["state"] == "activated"

    synced = run(end_user_bin, "licentia", "device", "sync", *at, "--json", store=store)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["seq"] >= 1

    returned = run(end_user_bin, "licentia", "device", "return", held["license"], *at, store=store)
    assert returned.returncode == 0, returned.stderr
    assert vendor.ok("GET", f"/licenses/{held['license']}")["state"] == "returned"
