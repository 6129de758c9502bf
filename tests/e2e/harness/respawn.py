"""A server that is SIGKILLed over and over and comes straight back.

``python -m tests.e2e.harness.respawn PORT`` imports License Central once, binds the
port once, then forks a server process (uvicorn with ``licentia serve``'s own options
and app factory, reading the same ``LICENTIA_*`` settings) and prints ``SERVING
<pid>``; whenever that process dies, it forks the next one. A test kills the printed
process at random moments. Forking from a parent that has imported everything makes
a restart skip the interpreter's start and every import, most of what a restart
costs, so that hundreds of kills stay affordable. The listening socket stays open
across a kill, so clients meet what they meet when a process behind a load balancer
dies: their connections to it are reset, new ones wait for the next process.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.servers import Environment, free_port, tail

REPO = Path(__file__).resolve().parents[3]


@dataclass
class RespawningServer:
    """The parent process, and the server process it runs now."""

    parent: subprocess.Popen[str]
    url: str
    log: Path
    pid: int = 0

    def next_pid(self) -> int:
        """Wait for the next ``SERVING <pid>`` line; that process, once ready."""
        assert self.parent.stdout is not None
        # The server's own log lines share the output (structlog writes to stdout).
        line = self.parent.stdout.readline()
        while line and not line.startswith("SERVING "):
            line = self.parent.stdout.readline()
        if not line:
            raise AssertionError(f"the server did not come back\n{tail(self.log)}")
        self.pid = int(line.split()[1])
        self._await_ready()
        return self.pid

    def kill(self) -> None:
        """SIGKILL the serving process, then wait for the next one to be ready."""
        os.kill(self.pid, 9)
        self.next_pid()

    def stop(self) -> None:
        if self.parent.poll() is None:
            os.killpg(self.parent.pid, 15)
            self.parent.wait(timeout=30)

    def _await_ready(self) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"the server was not ready in 120 s\n{tail(self.log)}")


def start(env: Environment) -> RespawningServer:
    """Start the parent on a free port; returns once the first server is ready."""
    port = free_port()
    log = env.workdir / f"respawn-{port}.log"
    with log.open("w") as sink:
        parent = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.harness.respawn", str(port)],
            cwd=REPO,
            env=env.variables(),
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            start_new_session=True,
        )
    server = RespawningServer(parent, f"http://127.0.0.1:{port}", log)
    server.next_pid()
    return server


def main(port: int) -> None:
    import uvicorn

    import licentia.server.api.asgi  # noqa: F401  (imported once, before any fork)
    from licentia.cli.server.commands import APP, uvicorn_options
    from licentia.server.settings import Settings

    options = uvicorn_options(Settings(), access_log=False)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(2048)
    while True:
        pid = os.fork()
        if pid == 0:
            config = uvicorn.Config(APP, **options)
            uvicorn.Server(config).run(sockets=[listener])
            os._exit(0)
        print(f"SERVING {pid}", flush=True)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main(int(sys.argv[1]))
