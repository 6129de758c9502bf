"""``licentia admin import``: orders from an ERP's CSV export (docs/cli.md).

With ``--server`` and an API key (``orders:write``, and ``customers:write`` when the
file names customers by name) the orders go to License Central's
``POST /api/v1/orders/bulk`` in requests within its limits: vendor staff need
neither the database nor the server's code. Without it they are placed on this
machine's database (``licentia.cli.server.order_imports``) as the operator, with
``--vendor``. Either way each order is idempotent by its external order id: running
the same file again creates nothing and reports its rows as replays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from licentia.cli.lazy import server_missing
from licentia.cli.output import (
    EXIT_CONFIGURATION,
    EXIT_INVALID,
    EXIT_NETWORK,
    EXIT_ROWS_FAILED,
    Output,
    fail,
    for_people,
    to_json,
)
from licentia.cli.server import order_file
from licentia.cli.server.offline import guarded
from licentia.cli.server.remote import problem_in, refusal

app = typer.Typer(no_args_is_help=True, help="Orders from a CSV file (an ERP's export).")
OnResult = Callable[[dict[str, Any]], None]
_COLUMNS = ("row", "external_order_id", "line_id", "sku", "quantity", "status", "code", "detail")


@app.callback()
def imports() -> None:
    """Orders from a CSV file (an ERP's export)."""


@app.command("orders")
@guarded
def import_orders(
    csv_file: Annotated[Path, typer.Argument(help="The CSV file (docs/cli.md has its columns).")],
    vendor: Annotated[
        str | None,
        typer.Option("--vendor", envvar="LICENTIA_VENDOR", help="The vendor's slug (no --server)."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="LICENTIA_SERVER",
            help="License Central's address: send the orders there instead of using the database.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="LICENTIA_API_KEY", help="The vendor's API key (with --server)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Place the orders of a CSV file (one row per order line) and report each row:
    created, replayed (known before) or failed, with why. Exits 8 when a row failed."""
    try:
        rows, orders = order_file.read_orders(csv_file)
    except order_file.OrderFileError as error:
        fail(error.message, error.code, EXIT_INVALID)
    send = _sender(vendor, server, api_key)
    with _progress(len(rows), quiet=as_json) as advance:
        for failed in (order for order in orders if order.broken):
            advance(len(failed.rows))
        for batch in order_file.batches(orders):
            pending = iter(batch)

            def placed(item: dict[str, Any], pending: Any = pending) -> None:
                order = next(pending)
                order_file.apply_result(order, item)
                advance(len(order.rows))

            send([order.body() for order in batch], placed)
    _report(rows, as_json)


def _sender(
    vendor: str | None, server: str | None, api_key: str | None
) -> Callable[[list[dict[str, Any]], OnResult], None]:
    if server is not None:
        if not api_key:
            fail("--server needs --api-key (or LICENTIA_API_KEY)", "API_KEY_MISSING", EXIT_INVALID)
        return lambda bodies, on_result: _post(server, api_key, bodies, on_result)
    if not vendor:
        fail("give --vendor (or --server with --api-key)", "VENDOR_MISSING", EXIT_INVALID)
    try:
        from licentia.cli.server import order_imports
    except ModuleNotFoundError as error:
        fail(
            f"{server_missing(error)}, or give --server", "SERVER_NOT_INSTALLED", EXIT_CONFIGURATION
        )
    return lambda bodies, on_result: order_imports.place(vendor, bodies, on_result)


def _post(server: str, api_key: str, bodies: list[dict[str, Any]], on_result: OnResult) -> None:
    """One request to the bulk endpoint; each order's result, in the order sent."""
    import httpx

    url = f"{server.rstrip('/')}/api/v1/orders/bulk"
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        response = httpx.post(url, json={"orders": bodies}, headers=headers, timeout=300)
    except httpx.HTTPError as error:
        fail(
            f"License Central at {server} could not be reached: {error} (orders already"
            " placed are replayed when the file is imported again)",
            "NETWORK_ERROR",
            EXIT_NETWORK,
        )
    if response.status_code != 200:
        raise refusal(response.status_code, problem_in(response), server)
    for item in response.json()["results"]:
        on_result(item)


def _report(rows: list[order_file.Row], as_json: bool) -> None:
    """Every row with its outcome, then the counts; exit 8 when a row failed."""
    counts = order_file.summary(rows)
    failed = counts["failed"] > 0
    if as_json:
        document: dict[str, Any] = {"rows": [row.report() for row in rows], "summary": counts}
        typer.echo(to_json(document | ({"exit_code": EXIT_ROWS_FAILED} if failed else {})))
    else:
        from rich.table import Table

        table = Table(title="Imported rows")
        for column in _COLUMNS:
            table.add_column(column, overflow="fold")
        for row in rows:
            report = row.report()
            table.add_row(*(for_people(report[c]) for c in _COLUMNS))
        console = Output().console
        console.print(table)
        console.print(
            f"{counts['rows']} rows: {counts['created']} created, {counts['replayed']}"
            f" replayed, {counts['failed']} failed"
        )
    if failed:
        raise typer.Exit(EXIT_ROWS_FAILED)


@contextmanager
def _progress(total: int, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar over the file's rows, on standard error; nothing for --json.
    Yields the function that counts rows done."""
    if quiet:
        yield lambda _rows: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("importing rows", total=total)
        yield lambda rows: bar.advance(task, rows)
