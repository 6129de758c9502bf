"""Reading an ERP's order export (CSV, docs/cli.md "Importing orders") into orders.

One row is one order line; the rows of one external order id, wherever they stand in
the file, make one order. A row this module cannot read (a missing value, a quantity
that is no number) fails its whole order, which is then not sent: an order is placed
as the file states it or not at all. What the server refuses (an unknown SKU, a line
ordered before with other content) comes back per order, and is reported on each of
its rows.

Pure Python, no server code: ``--server`` needs only the ``cli`` extra.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUIRED = ("external_order_id", "sku", "quantity")
OPTIONAL = ("line_id", "customer_external_id", "customer_name", "customer_email")
COLUMNS = REQUIRED + OPTIONAL
# The longest value of each column that License Central stores.
LONGEST = {"external_order_id": 200, "sku": 64, "line_id": 64}
LONGEST |= {"customer_external_id": 200, "customer_name": 200, "customer_email": 320}
MAX_QUANTITY = 20_000  # licenses of one order line, as License Central takes them
# What one request to the bulk endpoint may carry (License Central's limits).
BATCH_ORDERS = 100
BATCH_LICENSES = 5000


class OrderFileError(Exception):
    """The file as a whole cannot be imported (unreadable, no header, a required
    column missing): nothing is sent."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass
class Row:
    """One line of the file; ``number`` is its line in the file (the header is 1)."""

    number: int
    values: dict[str, str]
    status: str = "pending"
    code: str | None = None
    detail: str | None = None
    order_id: str | None = None
    ticket_id: str | None = None

    def fail(self, code: str, detail: str) -> None:
        self.status, self.code, self.detail = "failed", code, detail

    def report(self) -> dict[str, Any]:
        return {
            "row": self.number,
            "external_order_id": self.values.get("external_order_id") or None,
            "line_id": self.values.get("line_id") or None,
            "sku": self.values.get("sku") or None,
            "quantity": self.values.get("quantity") or None,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "order_id": self.order_id,
            "ticket_id": self.ticket_id,
        }


@dataclass
class FileOrder:
    """The rows of one external order id; ``line_ids[i]`` is the line id of ``rows[i]``."""

    external_order_id: str
    rows: list[Row] = field(default_factory=list)
    line_ids: list[str] = field(default_factory=list)

    @property
    def broken(self) -> bool:
        return any(row.status == "failed" for row in self.rows)

    @property
    def licenses(self) -> int:
        return sum(int(row.values["quantity"]) for row in self.rows)

    def body(self) -> dict[str, Any]:
        """The order as the bulk endpoint takes it."""
        first = self.rows[0].values
        order: dict[str, Any] = {
            "external_order_id": self.external_order_id,
            "lines": [
                {"sku": row.values["sku"], "quantity": int(row.values["quantity"]), "line_id": lid}
                for row, lid in zip(self.rows, self.line_ids, strict=True)
            ],
        }
        if first.get("customer_external_id"):
            customer = {"external_id": first["customer_external_id"]}
            for name in ("name", "email"):
                if first.get(f"customer_{name}"):
                    customer[name] = first[f"customer_{name}"]
            order["customer"] = customer
        return order

    def fail(self, code: str, detail: str) -> None:
        """The whole order failed: each of its rows says so, the guilty ones first."""
        for row in self.rows:
            if row.status != "failed":
                row.fail(code, detail)


def read_orders(path: Path) -> tuple[list[Row], list[FileOrder]]:
    """Every row of the file, and its orders in the order they first appear. Rows that
    cannot be read are marked failed, and so is the rest of their order. Raises
    OrderFileError for a file that cannot be imported at all."""
    rows = list(_rows(path))
    orders: dict[str, FileOrder] = {}
    for row in rows:
        key = row.values.get("external_order_id") or f"(row {row.number})"
        orders.setdefault(key, FileOrder(key)).rows.append(row)
    for order in orders.values():
        _check(order)
    return rows, list(orders.values())


def _rows(path: Path) -> Iterator[Row]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle, restkey="\0extra")
            header = [name.strip() for name in reader.fieldnames or ()]
            missing = [name for name in REQUIRED if name not in header]
            if not header or missing:
                raise OrderFileError(
                    f"{path}: the header names no column {', '.join(missing or REQUIRED)}"
                    f" (columns: {', '.join(COLUMNS)})",
                    "CSV_COLUMN_MISSING",
                )
            reader.fieldnames = header
            for values in reader:
                yield _row(reader.line_num, values)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise OrderFileError(f"cannot read {path}: {error}", "FILE_UNREADABLE") from error


def _row(number: int, raw: dict[str, Any]) -> Row:
    extra = raw.pop("\0extra", None)
    values = {name: (value or "").strip() for name, value in raw.items() if name in COLUMNS}
    row = Row(number, values)
    absent = [name for name in REQUIRED if raw.get(name) is None]
    empty = [name for name in REQUIRED if name not in absent and not values[name]]
    long = [name for name, value in values.items() if len(value) > LONGEST.get(name, 12)]
    if extra:
        row.fail("CSV_ROW_TOO_LONG", f"row {number} has more values than the header has columns")
    elif absent:
        row.fail("CSV_VALUE_MISSING", f"row {number} has no column {', '.join(absent)}")
    elif empty:
        row.fail("CSV_VALUE_MISSING", f"row {number} has an empty {', '.join(empty)}")
    elif not _quantity_ok(values["quantity"]):
        row.fail(
            "CSV_QUANTITY_INVALID",
            f"row {number}: quantity {values['quantity'][:12]!r} is not a whole number"
            f" from 1 to {MAX_QUANTITY}",
        )
    elif long:
        row.fail("CSV_VALUE_TOO_LONG", f"row {number}: {', '.join(long)} too long")
    return row


def _quantity_ok(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_QUANTITY


def _check(order: FileOrder) -> None:
    """Line ids (the file's, or the row's place in its order) and one customer per order."""
    order.line_ids = [row.values.get("line_id") or str(i + 1) for i, row in enumerate(order.rows)]
    bad = next((row for row in order.rows if row.status == "failed"), None)
    if bad is not None:
        order.fail(bad.code or "CSV_ROW_INVALID", f"another row of this order failed: {bad.detail}")
        return
    customers = {row.values.get("customer_external_id", "") for row in order.rows}
    if len(customers) > 1:
        order.fail(
            "CSV_ORDER_INCONSISTENT",
            f"the rows of order {order.external_order_id!r} name different customers",
        )


def batches(orders: list[FileOrder]) -> Iterator[list[FileOrder]]:
    """The orders to send, in requests within the bulk endpoint's limits."""
    batch: list[FileOrder] = []
    licenses = 0
    for order in orders:
        if order.broken:
            continue
        if batch and (len(batch) == BATCH_ORDERS or licenses + order.licenses > BATCH_LICENSES):
            yield batch
            batch, licenses = [], 0
        batch.append(order)
        licenses += order.licenses
    if batch:
        yield batch


def apply_result(order: FileOrder, item: dict[str, Any]) -> None:
    """Mark the order's rows with what the server did: a new order's rows and the new
    lines of a known one ``created``, lines it knew ``replayed``, or ``failed``."""
    if item["status"] == "failed":
        problem = item.get("problem") or {}
        order.fail(str(problem.get("code", "FAILED")), str(problem.get("detail", "")))
        return
    placed = item["order"]
    added = set(placed.get("added_lines") or ())
    for row, line_id in zip(order.rows, order.line_ids, strict=True):
        row.status = "created" if line_id in added else "replayed"
        row.order_id, row.ticket_id = placed["id"], placed["ticket_id"]


def summary(rows: list[Row]) -> dict[str, int]:
    counts = {"rows": len(rows), "created": 0, "replayed": 0, "failed": 0}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts
