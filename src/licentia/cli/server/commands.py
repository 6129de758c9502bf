"""``licentia serve``, ``demo``, ``db …`` and ``audit …``: running License Central."""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from licentia.cli.output import EXIT_BROKEN, EXIT_CONFIGURATION, Output, fail
from licentia.cli.server.errors import server_guarded
from licentia.cli.server.runtime import Runtime

if TYPE_CHECKING:
    import uvicorn

    from licentia.server.settings import Settings

app = typer.Typer(no_args_is_help=True)
db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log.")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")

APP = "licentia.server.api.asgi:build"  # the factory uvicorn calls, once per worker
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's multiprocess folder
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command()
@server_guarded
def serve(
    host: Annotated[str | None, typer.Option(help="Default: LICENTIA_HOST or 127.0.0.1")] = None,
    port: Annotated[int | None, typer.Option(help="Default: LICENTIA_PORT or 8000")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes (PostgreSQL only).")] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (a proxy in front often logs them already).")
    ] = True,
    check_address: Annotated[
        bool,
        typer.Option(
            "--check-address", help="Only check that the address is free to listen on, and exit."
        ),
    ] = False,
) -> None:
    """Serve the API (refuses an un-migrated database or an unsafe master key)."""
    import uvicorn

    runtime = Runtime.load()
    settings = runtime.settings
    host, port = host or settings.host, port or settings.port
    _check_address_free(host, port)
    if check_address:
        return
    runtime.check_ready()
    if workers > 1 and settings.is_sqlite:
        fail(
            "several workers need PostgreSQL; SQLite serves one process",
            "CONFIGURATION_ERROR",
            EXIT_CONFIGURATION,
        )
    if workers > 1:
        _bind_tcp_sockets(uvicorn.Config)
    _raise_open_files_limit()
    with _metrics_folder(workers):
        uvicorn.run(
            APP,
            host=host,
            port=port,
            workers=workers,
            **uvicorn_options(settings, access_log=access_log),
        )


def _check_address_free(host: str, port: int) -> None:
    """Fail with a message naming the port and LICENTIA_PORT if nothing could listen on
    ``host:port``: ``make run`` asks before it seeds the demo, whose seeding revokes
    the demo API key a server already running there answers to."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as error:
        taken = getattr(error, "errno", None) == errno.EADDRINUSE
        why = "is in use already (another licentia serve?)" if taken else f"cannot be used: {error}"
        fail(
            f"port {port} on {host} {why}; stop what listens there or choose another port"
            f" with LICENTIA_PORT (e.g. LICENTIA_PORT={port + 1}); LICENTIA_HOST sets the address",
            "ADDRESS_IN_USE" if taken else "ADDRESS_UNUSABLE",
            EXIT_CONFIGURATION,
        )


def uvicorn_options(settings: Settings, *, access_log: bool) -> dict[str, Any]:
    """How ``licentia serve`` has uvicorn run ``APP``, apart from where it listens."""
    from licentia.server.api.connections import bounded_protocol
    from licentia.server.observability.logs import uvicorn_log_config

    # The client's address (what rate limits count) and scheme come from
    # X-Forwarded-For and -Proto only when the peer is a proxy the operator named:
    # uvicorn by itself would believe any peer on 127.0.0.1.
    proxies = settings.trusted_proxy_list
    return {
        "factory": True,
        "log_level": settings.log_level,
        "log_config": uvicorn_log_config(as_json=settings.logs_as_json, level=settings.log_level),
        "access_log": access_log,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "http": bounded_protocol(settings),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "timeout_worker_healthcheck": settings.worker_healthcheck_seconds,
    }


@contextlib.contextmanager
def _metrics_folder(workers: int) -> Iterator[None]:
    """Several workers count their metrics in files of one folder, which ``/metrics``
    adds up (prometheus-client's multiprocess mode, docs/operations.md#metrics): the
    operator's ``PROMETHEUS_MULTIPROC_DIR`` emptied of an earlier run's files, else a
    temporary folder removed at the end. One process counts in its memory."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    if workers == 1:
        yield
        return
    given = os.environ.get(METRICS_DIR)
    if given:
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        yield
        return
    folder = tempfile.mkdtemp(prefix="licentia-metrics-")
    os.environ[METRICS_DIR] = folder  # the workers are started with this environment
    try:
        yield
    finally:
        del os.environ[METRICS_DIR]
        shutil.rmtree(folder, ignore_errors=True)


def _raise_open_files_limit() -> None:
    """Allow the process as many open files as the system lets it (the soft limit is
    often 1024): LICENTIA_MAX_CONNECTIONS, not the descriptors, should bound it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # An unlimited hard limit is more than the kernel allows: keep the soft one then.
    with contextlib.suppress(ValueError, OSError):
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _bind_tcp_sockets(config: type[uvicorn.Config]) -> None:
    """Make the socket uvicorn shares with its worker processes say it is TCP.

    uvicorn binds it without naming the protocol (``proto`` 0), so asyncio does not set
    TCP_NODELAY on the connections the workers accept, and every answer sent in two
    writes waits for the client's delayed ACK (~40 ms). A socket object made from the
    same descriptor reads the real protocol from the kernel.
    """
    bind = config.bind_socket

    def bind_tcp(self: uvicorn.Config) -> socket.socket:
        sock = bind(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            return socket.socket(fileno=sock.detach())
        return sock

    config.bind_socket = bind_tcp  # type: ignore[method-assign]


@db_app.command("upgrade")
@server_guarded
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Create (SQLite) and migrate the database: apply every migration."""
    runtime = Runtime.load()
    runtime.upgrade()
    Output(as_json).record({"status": "migrated", "schema": runtime.status().current})


@db_app.command("status")
@server_guarded
def db_status(as_json: JsonFlag = False) -> None:
    """Show the schema revision and whether it matches this code (exit 7 if not)."""
    runtime = Runtime.load()
    missing = runtime.missing()
    if missing is not None:
        answer = {"current": None, "head": runtime.head(), "up_to_date": False}
        Output(as_json).record(answer | {"problem": missing})
        raise typer.Exit(EXIT_BROKEN)
    status = runtime.status()
    Output(as_json).record(
        {
            "current": status.current,
            "head": status.head,
            "up_to_date": status.up_to_date,
            "problem": status.problem(),
        }
    )
    if not status.up_to_date:
        raise typer.Exit(EXIT_BROKEN)


@audit_app.command("verify")
@server_guarded
def audit_verify(
    vendor: Annotated[str | None, typer.Option(help="Only this vendor's chain (slug).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every audit chain; report the first broken link of each. Exit 7 if broken."""
    breaks = Runtime.load().verify_audit(vendor)
    rows = [{"chain": b.chain, "seq": b.seq, "reason": b.reason} for b in breaks]
    out = Output(as_json)
    if as_json:
        out.record({"intact": not breaks, "breaks": rows})
    elif breaks:
        out.rows(rows, ["chain", "seq", "reason"], title="Audit chain broken")
    else:
        out.console.print("[green]audit chain intact[/]")
    if breaks:
        raise typer.Exit(EXIT_BROKEN)


@app.command()
@server_guarded
def demo(as_json: JsonFlag = False) -> None:
    """Seed the demo vendor (idempotent) and print its logins and a fresh API key (the
    previous demo key is revoked)."""
    from rich.console import Console

    runtime = Runtime.load()
    result = runtime.seed_demo()
    settings = runtime.settings
    Output(as_json).record(
        {
            "vendor": result.vendor_slug,
            "api_key": result.api_key,
            "ticket_code": result.ticket_code,
            "password (all demo users)": result.password,
            "console": f"{settings.public_url}/console/login",
            **{f"user ({role})": email for role, email in result.users.items()},
            "customer portal": f"{settings.public_url}/portal/{result.vendor_slug}/",
            "customer admin (Acme Photo GmbH)": result.customer_admin,
            "server (licentia serve)": f"http://{settings.host}:{settings.port}",
            "api docs": f"{settings.public_url}/docs",
        },
        title="Licentia demo",
        own_line=["api_key"],
    )
    if not as_json:
        # A table wraps the key in a narrow terminal; this line pastes whole into a shell.
        Console(soft_wrap=True).print(
            f"\nTo try the API (README.md), in another terminal:\n"
            f"  export LICENTIA_API_KEY={result.api_key}\n"
            f"  export LICENTIA_PORT={settings.port}",
            highlight=False,
        )
