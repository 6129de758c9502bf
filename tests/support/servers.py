"""Real ``licentia serve`` processes and throwaway databases: what the end-to-end
tests start, and what the benchmarks (bench/) start too, from this one implementation.

A server binds to 127.0.0.1 on a free port, in its own process group so that its
workers stop with it. PostgreSQL databases are made on the server of an admin URL and
dropped (connections and all) when the block ends.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from licentia.server.keys.master import new_master_key_text

LICENTIA = str(Path(sys.executable).with_name("licentia"))
READY_TIMEOUT = 60.0


class SetupError(Exception):
    """A server or database could not be set up (PostgreSQL unreachable, a server
    that exits or is not ready in time, a ``licentia`` command that fails)."""


@contextmanager
def postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database named ``prefix_<random>`` on the PostgreSQL server of
    ``admin_url``, dropped (connections and all) when the block ends. Raises
    SetupError if the server cannot be reached."""
    url = new_postgres_database(admin_url, prefix)
    try:
        yield url
    finally:
        drop_postgres_database(admin_url, make_url(url).database or "")


def new_postgres_database(admin_url: str, prefix: str) -> str:
    """The URL of a new, empty database named ``prefix_<random>`` on the PostgreSQL
    server of ``admin_url``, kept until :func:`drop_postgres_database`. Raises
    SetupError if the server cannot be reached."""
    admin_at = make_url(admin_url).set(drivername="postgresql+psycopg")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = create_engine(admin_at, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        raise SetupError(f"PostgreSQL not reachable at {admin_url}: {error.orig}") from error
    finally:
        admin.dispose()
    return admin_at.set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, name: str) -> None:
    """Drop the database ``name`` (its connections too) from the server of ``admin_url``."""
    admin_at = make_url(admin_url).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_at, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass(frozen=True)
class Environment:
    """The ``LICENTIA_*`` settings every process of one test cluster (or one
    benchmark) shares; ``extra`` adds or overrides variables."""

    database_url: str
    master_key: str
    workdir: Path
    extra: Mapping[str, str] = field(default_factory=dict)

    def variables(self) -> dict[str, str]:
        return {
            **os.environ,
            "LICENTIA_ENVIRONMENT": "development",
            "LICENTIA_DATABASE_URL": self.database_url,
            "LICENTIA_MASTER_KEY": self.master_key,
            "LICENTIA_MASTER_KEY_FILE": str(self.workdir / "master.key"),
            # Tests and benchmarks race hundreds of clients from one loopback address:
            # rate limits and the cap of connections per address off unless ``extra``
            # sets them (the abuse and connection tests and the benchmarks do).
            "LICENTIA_RATE_LIMITS": "false",
            "LICENTIA_MAX_CONNECTIONS_PER_ADDRESS": "0",
            **self.extra,
        }

    def cli(self, *args: str) -> Any:
        """Run ``licentia ARGS --json`` and return its parsed output."""
        done = subprocess.run(
            [LICENTIA, *args, "--json"],
            env=self.variables(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise SetupError(f"licentia {' '.join(args)} failed: {done.stderr.strip()}")
        return json.loads(done.stdout)


def new_environment(
    database_url: str, workdir: Path, extra: Mapping[str, str] | None = None
) -> Environment:
    return Environment(database_url, new_master_key_text(), workdir, dict(extra or {}))


@dataclass
class Server:
    """A running ``licentia serve``; ``url`` is its loopback base URL."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        """Ask the server (and its workers) to shut down; kill them if they linger."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


@contextmanager
def running_server(env: Environment, *, workers: int = 1) -> Iterator[Server]:
    """Start ``licentia serve`` and wait until ``/readyz`` answers 200."""
    server = start_server(env, workers=workers)
    try:
        wait_ready(server)
        yield server
    except SetupError as error:
        raise SetupError(f"{error}\nserver log:\n{tail(server.log, 40)}") from error
    finally:
        server.stop()


def start_server(env: Environment, *, workers: int = 1) -> Server:
    """Start ``licentia serve`` on a free loopback port, without waiting for it; the
    caller stops it (``Server.stop``)."""
    port = free_port()
    log = env.workdir / f"serve-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [LICENTIA, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
            + (["--workers", str(workers)] if workers > 1 else []),
            env=env.variables(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so workers stop with it
        )
    return Server(process, f"http://127.0.0.1:{port}", log)


def wait_ready(server: Server) -> None:
    """Raises SetupError if the server exits or is not ready in time."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SetupError(f"the server exited: {tail(server.log)}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SetupError(f"the server was not ready in {READY_TIMEOUT:.0f} s: {tail(server.log)}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
