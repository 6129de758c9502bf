"""``licentia admin import orders FILE.csv``: an ERP's export, imported row by row.

The files are real CSV files written as an ERP writes them. With ``--server`` the
command talks to License Central served by uvicorn (the ``live_server``), with an API
key; without, it works on the database as the operator. What it claims is checked
through the HTTP API.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from licentia.cli.main import app as cli
from licentia.server.keys.master import new_master_key_text
from tests.factories import VendorFactory, VendorHandle
from tests.integration.test_cli import Operator, bearer

HEADER = "external_order_id,line_id,sku,quantity,customer_external_id,customer_name\n"


def write(tmp_path: Path, text: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, ["admin", "import", "orders", *args], env=env)


def remote(vendor: VendorHandle, live_server: str, path: Path, *more: str) -> Result:
    return run(str(path), "--server", live_server, "--api-key", vendor.api_key, *more)


def report(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def statuses(document: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [(row["row"], row["status"], row["code"]) for row in document["rows"]]


def orders_of(vendor: VendorHandle) -> dict[str, dict[str, Any]]:
    items = vendor.ok("GET", "/orders", params={"limit": 200})["items"]
    return {item["external_order_id"]: item for item in items}


@pytest.fixture
def shop(vendors: VendorFactory) -> tuple[VendorHandle, str, str]:
    vendor = vendors.create()
    return vendor, vendor.template()["sku"], vendor.template()["sku"]


def test_a_clean_file_is_imported_and_importing_it_again_creates_nothing(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    vendor, cad, view = shop
    path = write(
        tmp_path,
        HEADER
        + f"SO-4711,10,{cad},2,KD-1,Müller GmbH\n"
        + f"SO-4711,20,{view},5,KD-1,Müller GmbH\n"
        + f"SO-4712,10,{cad},1,,\n",
    )
    first = remote(vendor, live_server, path, "--json")
    assert first.exit_code == 0, first.output
    assert statuses(report(first)) == [
        (2, "created", None),
        (3, "created", None),
        (4, "created", None),
    ]
    assert report(first)["summary"] == {"rows": 3, "created": 3, "replayed": 0, "failed": 0}
    placed = orders_of(vendor)
    assert sorted(placed) == ["SO-4711", "SO-4712"]
    assert [(x["line_id"], x["quantity"]) for x in placed["SO-4711"]["lines"]] == [
        ("10", 2),
        ("20", 5),
    ]
    (customer,) = vendor.ok("GET", "/customers", params={"external_id": "KD-1"})["items"]
    assert (placed["SO-4711"]["customer_id"], customer["name"]) == (customer["id"], "Müller GmbH")

    again = remote(vendor, live_server, path, "--json")
    assert again.exit_code == 0, again.output
    assert [row["status"] for row in report(again)["rows"]] == ["replayed"] * 3
    assert orders_of(vendor) == placed
    ticket = vendor.ok("GET", f"/tickets/{placed['SO-4711']['ticket_id']}")
    assert len(ticket["license_ids"]) == 7


def test_broken_rows_are_reported_and_fail_only_their_own_order(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    vendor, cad, view = shop
    path = write(
        tmp_path,
        HEADER
        + f"SO-1,10,{cad},1,,\n"  # good
        + "SO-2,10,NO-SUCH-SKU,1,,\n"  # bad SKU: the server refuses the order
        + f"SO-3,10,{cad}\n"  # missing columns
        + f"SO-4,10,{cad},two,,\n"  # bad quantity
        + f"SO-5,10,{cad},1,,\n"  # good, but its second row is broken
        + f"SO-5,20,{view},0,,\n"
        + f"SO-6,10,{cad},1,,\n"  # one line id, two contents
        + f"SO-6,10,{view},3,,\n"
        + f"SO-7,10,{view},4,,\n",  # good
    )
    result = remote(vendor, live_server, path, "--json")
    assert result.exit_code == 8, result.output
    document = report(result)
    assert statuses(document) == [
        (2, "created", None),
        (3, "failed", "UNKNOWN_SKU"),
        (4, "failed", "CSV_VALUE_MISSING"),
        (5, "failed", "CSV_QUANTITY_INVALID"),
        (6, "failed", "CSV_QUANTITY_INVALID"),
        (7, "failed", "CSV_QUANTITY_INVALID"),
        (8, "failed", "VALIDATION_FAILED"),
        (9, "failed", "VALIDATION_FAILED"),
        (10, "created", None),
    ]
    assert document["summary"] == {"rows": 9, "created": 2, "replayed": 0, "failed": 7}
    assert document["exit_code"] == 8
    rows = {row["row"]: row for row in document["rows"]}
    assert "quantity" in rows[4]["detail"]
    assert "another row of this order failed" in rows[6]["detail"]
    assert "appears twice" in rows[8]["detail"]
    assert sorted(orders_of(vendor)) == ["SO-1", "SO-7"]


def test_a_customer_email_that_is_no_address_fails_its_order(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    vendor, cad, _ = shop
    header = HEADER.rstrip("\n") + ",customer_email\n"
    path = write(
        tmp_path,
        header + f"SO-1,10,{cad},1,KD-1,Acme,it@acme.example\n" + f"SO-2,10,{cad},1,KD-2,Z,nope\n",
    )
    result = remote(vendor, live_server, path, "--json")
    assert result.exit_code == 8, result.output
    assert statuses(report(result)) == [(2, "created", None), (3, "failed", "EMAIL_INVALID")]
    assert sorted(orders_of(vendor)) == ["SO-1"]


def test_an_order_sent_again_with_a_changed_line_fails_and_new_lines_are_added(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    vendor, cad, view = shop
    remote(vendor, live_server, write(tmp_path, HEADER + f"SO-1,10,{cad},1,,\nSO-2,10,{cad},1,,\n"))
    changed = write(
        tmp_path,
        HEADER
        + f"SO-1,10,{cad},1,,\n"
        + f"SO-1,20,{view},2,,\n"  # a new line of a known order
        + f"SO-2,10,{view},1,,\n",  # a known line with another SKU
        "changed.csv",
    )
    result = remote(vendor, live_server, changed, "--json")
    assert result.exit_code == 8
    assert statuses(report(result)) == [
        (2, "replayed", None),
        (3, "created", None),
        (4, "failed", "ORDER_LINE_CONFLICT"),
    ]
    placed = orders_of(vendor)
    assert [line["line_id"] for line in placed["SO-1"]["lines"]] == ["10", "20"]
    assert [line["sku"] for line in placed["SO-2"]["lines"]] == [cad]


def test_the_report_for_people_is_a_table_with_a_summary(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    vendor, cad, _ = shop
    path = write(tmp_path, HEADER + f"SO-1,10,{cad},1,,\nSO-2,10,NOPE,1,,\n")
    result = run(str(path), "--server", live_server, "--api-key", vendor.api_key, COLUMNS="250")
    assert result.exit_code == 8
    assert "UNKNOWN_SKU" in result.stdout
    assert "2 rows: 1 created, 0 replayed, 1 failed" in result.stdout
    assert "importing rows" in result.stderr  # the progress bar


def test_a_file_without_a_required_column_is_refused_and_nothing_is_sent(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    vendor, cad, _ = shop
    path = write(tmp_path, f"external_order_id,sku\nSO-1,{cad}\n")
    result = remote(vendor, live_server, path, "--json")
    assert result.exit_code == 2
    assert report(result)["error"]["code"] == "CSV_COLUMN_MISSING"
    assert "quantity" in report(result)["error"]["message"]
    assert orders_of(vendor) == {}


def test_a_wrong_api_key_is_refused_with_exit_3(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    _, cad, _ = shop
    path = write(tmp_path, HEADER + f"SO-1,10,{cad},1,,\n")
    result = run(str(path), "--server", live_server, "--api-key", "lic_wrong", "--json")
    assert result.exit_code == 3
    assert report(result)["error"]["code"] == "UNAUTHENTICATED"


def test_more_orders_than_one_request_takes_are_sent_in_several(
    shop: tuple[VendorHandle, str, str], live_server: str, tmp_path: Path
) -> None:
    vendor, cad, _ = shop
    rows = "".join(f"SO-{n},1,{cad},1,,\n" for n in range(130))
    result = remote(vendor, live_server, write(tmp_path, HEADER + rows), "--json")
    assert result.exit_code == 0, result.output
    assert report(result)["summary"]["created"] == 130
    assert len(vendor.ok("GET", "/orders", params={"limit": 200})["items"]) == 130


def test_on_the_database_the_same_file_is_imported_once(database_url: str, tmp_path: Path) -> None:
    """Without --server: the operator's command on this machine's database."""
    ops = Operator(database_url, new_master_key_text())
    slug = f"imp-{secrets.token_hex(4)}"
    ops.json("admin", "vendor", "create", slug, "--name", "Importer")
    key = ops.json("admin", "api-key", "create", "--vendor", slug, "--name", "setup")["key"]
    with ops.api() as api:
        product = api.post(
            "/api/v1/products", headers=bearer(key), json={"code": "CAD", "name": "CAD"}
        )
        template = {"sku": "CAD-1", "name": "CAD", "product_id": product.json()["id"]}
        assert api.post("/api/v1/templates", headers=bearer(key), json=template).status_code == 201
    path = write(tmp_path, HEADER + "SO-1,10,CAD-1,3,KD-1,Acme\nSO-2,10,CAD-2,1,,\n")
    env = {
        "LICENTIA_DATABASE_URL": ops.database_url,
        "LICENTIA_MASTER_KEY": ops.master_key,
        "LICENTIA_ENVIRONMENT": "development",
    }
    first = run(str(path), "--vendor", slug, "--json", **env)
    again = run(str(path), "--vendor", slug, "--json", **env)
    assert (first.exit_code, again.exit_code) == (8, 8), first.output
    assert statuses(report(first)) == [(2, "created", None), (3, "failed", "UNKNOWN_SKU")]
    assert statuses(report(again)) == [(2, "replayed", None), (3, "failed", "UNKNOWN_SKU")]
    with ops.api() as api:
        orders = api.get("/api/v1/orders", headers=bearer(key)).json()["items"]
    assert [order["external_order_id"] for order in orders] == ["SO-1"]
    unknown = run(str(path), "--vendor", "no-such-vendor", "--json", **env)
    assert (unknown.exit_code, report(unknown)["error"]["code"]) == (4, "NOT_FOUND")
