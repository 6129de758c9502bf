"""``make run`` on a port another server holds stops before it touches the database:
the demo's seeding would revoke the API key that server answers to."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LICENTIA = Path(sys.executable).with_name("licentia")


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def run(args: list[str], port: int, database: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LICENTIA_PORT": str(port),
        "LICENTIA_HOST": "127.0.0.1",
        "LICENTIA_DATABASE_URL": f"sqlite:///{database}",
    }
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_make_run_on_a_taken_port_says_so_before_migrating_or_seeding(
    taken_port: int, tmp_path: Path
):
    database = tmp_path / "licentia.db"
    # -o: the test runs in an installed tree; make must not reinstall it.
    result = run(["make", "-o", ".venv/.installed", "run"], taken_port, database)
    assert result.returncode != 0
    assert f"port {taken_port}" in result.stderr and "LICENTIA_PORT" in result.stderr
    assert "Seeding" not in result.stdout and "Migrating" not in result.stdout
    assert not database.exists()


def test_the_address_check_passes_on_a_free_port(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run([str(LICENTIA), "serve", "--check-address"], port, tmp_path / "licentia.db")
    assert result.returncode == 0, result.stderr


def test_serve_on_a_taken_port_names_the_port_and_the_setting(taken_port: int, tmp_path: Path):
    result = run([str(LICENTIA), "serve"], taken_port, tmp_path / "licentia.db")
    assert result.returncode == 6
    assert "ADDRESS_IN_USE" in result.stderr and f"port {taken_port}" in result.stderr
