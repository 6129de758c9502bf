"""The end user's commands (`licentia device …`, `licentia-activate`) and the vendor's
offline command, against a live License Central."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from licentia.cli.main import app
from licentia.cli.wizard import wizard
from tests.factories import VendorHandle

runner = CliRunner()


@pytest.fixture
def device_env(vendors, live_server, tmp_path: Path) -> tuple[VendorHandle, list[str], str]:
    vendor = vendors.create()
    template = vendor.template({"delivery": "device"})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(vendor.client.get(f"/api/v1/vendors/{vendor.slug}/jwks.json").text)
    common = ["--vendor", vendor.slug, "--jwks", str(jwks), "--store", str(tmp_path / "store")]
    return vendor, common, code


def test_a_user_activates_online_and_sees_the_license_in_the_status(device_env, live_server):
    vendor, common, code = device_env
    activated = runner.invoke(app, ["device", "activate", code, "--server", live_server, *common])
    assert activated.exit_code == 0, activated.output
    status = runner.invoke(app, ["device", "status", *common, "--json"])
    licenses = json.loads(status.output)["licenses"]
    assert len(licenses) == 1
    assert vendor.ok("GET", f"/licenses/{licenses[0]['license']}")["state"] == "activated"


def test_status_in_an_80_column_terminal_shows_each_license_id_on_one_line(device_env, live_server):
    vendor, common, code = device_env
    activated = runner.invoke(
        app, ["device", "activate", code, "--server", live_server, *common], env={"COLUMNS": "80"}
    )
    status = runner.invoke(app, ["device", "status", *common], env={"COLUMNS": "80"})
    (item,) = vendor.ok("GET", "/licenses")["items"]
    license_id = item["id"]
    for result in (activated, status):
        assert result.exit_code == 0, result.output
        assert f"license {license_id}" in result.output.splitlines(), result.output


def mistyped(code: str) -> str:
    """``code`` with its check symbol changed: one typo."""
    return code[:-1] + ("0" if code[-1] != "0" else "1")


def test_a_typo_in_the_ticket_is_refused_before_anything_is_sent_or_written(
    device_env, live_server, tmp_path
):
    _, common, code = device_env
    result = runner.invoke(
        app, ["device", "activate", mistyped(code), "--server", live_server, *common]
    )
    assert result.exit_code == 2
    assert "TICKET_CODE_INVALID" in result.output
    assert not (tmp_path / "store").exists()  # no device store was even created


def test_a_request_file_with_a_mistyped_ticket_is_not_written(device_env, tmp_path):
    _, common, code = device_env
    request = tmp_path / "request.jws"
    result = runner.invoke(
        app, ["device", "request", str(request), "--ticket", mistyped(code), *common]
    )
    assert result.exit_code == 2
    assert "TICKET_CODE_INVALID" in result.output
    assert not request.exists()


def test_a_request_without_a_ticket_from_a_computer_that_holds_nothing_warns(
    device_env, live_server, tmp_path
):
    _, common, code = device_env
    request = tmp_path / "request.jws"
    bare = runner.invoke(app, ["device", "request", str(request), *common, "--json"])
    assert bare.exit_code == 0, bare.output
    assert "--ticket" in json.loads(bare.output)["warning"]
    assert request.exists()  # written all the same: the computer may be known to the server
    runner.invoke(app, ["device", "activate", code, "--server", live_server, *common])
    renewal = runner.invoke(app, ["device", "request", str(request), *common, "--json"])
    assert renewal.exit_code == 0, renewal.output
    assert "warning" not in json.loads(renewal.output)  # it holds a license to renew


def test_the_wizard_asks_again_for_a_mistyped_ticket(device_env, live_server, tmp_path):
    _, common, code = device_env
    request = tmp_path / "request.jws"
    result = runner.invoke(
        wizard,
        ["--mode", "file", "--request-file", str(request), *common],
        input=f"{mistyped(code)}\n{code}\nn\n",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("type it again") == 1  # said once, not twice
    assert request.exists()


def test_status_without_a_vendor_says_so_and_exits_2(device_env):
    _, common, _ = device_env
    without_vendor = common[2:]  # --jwks and --store only
    result = runner.invoke(app, ["device", "status", *without_vendor], env={"LICENTIA_VENDOR": ""})
    assert result.exit_code == 2
    assert "VENDOR_MISSING" in result.output and "--vendor" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unknown_vendor_is_named_as_such_and_exits_4(live_server, tmp_path):
    store = tmp_path / "store"
    result = runner.invoke(
        app,
        ["device", "status", "--vendor", "no-such-vendor", "--server", live_server],
        env={"LICENTIA_STORE": str(store)},
    )
    assert result.exit_code == 4
    assert "VENDOR_NOT_FOUND" in result.output and "no-such-vendor" in result.output
    assert "mozilla" not in result.output


def test_a_server_that_cannot_be_reached_is_named_in_the_error(
    device_env, dead_server_url, tmp_path
):
    vendor, common, code = device_env
    fetching = runner.invoke(
        app,
        ["device", "status", "--vendor", vendor.slug, "--server", dead_server_url],
        env={"LICENTIA_STORE": str(tmp_path / "other-store")},
    )
    activating = runner.invoke(
        app, ["device", "activate", code, "--server", dead_server_url, *common]
    )
    for result in (fetching, activating):
        assert result.exit_code == 12, result.output
        assert "NETWORK_ERROR" in result.output and dead_server_url in result.output


def test_json_output_has_rfc3339_times_nulls_and_arrays(device_env, live_server):
    _, common, code = device_env
    activated = runner.invoke(app, ["device", "activate", code, "--server", live_server, *common])
    assert activated.exit_code == 0, activated.output
    status = json.loads(runner.invoke(app, ["device", "status", *common, "--json"]).output)
    rfc3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
    assert rfc3339.match(status["last_sync"]) and rfc3339.match(status["next_refresh"])
    (license_,) = status["licenses"]
    assert isinstance(license_["features"], list)
    assert rfc3339.match(license_["lease_until"])
    assert license_["maintenance_until"] is None or rfc3339.match(license_["maintenance_until"])
    assert status["problem"] is None


def test_errors_in_json_mode_are_json(device_env):
    _, common, _ = device_env
    result = runner.invoke(app, ["device", "sync", *common, "--json"])
    assert result.exit_code == 12  # no --server: nothing to sync with
    answer = json.loads(result.output)
    assert answer["error"]["code"] == "NETWORK_ERROR" and answer["error"]["message"]
    assert answer["exit_code"] == 12


def test_the_wizard_activates_online_without_questions_when_given_flags(device_env, live_server):
    _, common, code = device_env
    result = runner.invoke(
        wizard, ["--ticket", code, "--mode", "online", "--server", live_server, *common]
    )
    assert result.exit_code == 0, result.output
    assert "Activated" in result.output


def test_the_wizard_asks_for_the_ticket_and_the_mode(device_env, live_server):
    _, common, code = device_env
    result = runner.invoke(wizard, ["--server", live_server, *common], input=f"{code}\nonline\n")
    assert result.exit_code == 0, result.output
    assert "Activated" in result.output


def test_the_file_round_trip_through_the_vendor_cli(
    device_env, tmp_path, settings, master, monkeypatch
):
    vendor, common, code = device_env
    monkeypatch.setenv("LICENTIA_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LICENTIA_MASTER_KEY", base64.urlsafe_b64encode(master._secret).decode())
    request, update = tmp_path / "request.jws", tmp_path / "update.jws"
    asked = runner.invoke(
        wizard,
        ["--ticket", code, "--mode", "file", "--request-file", str(request), *common],
        input="n\n",
    )
    assert asked.exit_code == 0 and request.exists(), asked.output
    processed = runner.invoke(
        app,
        [
            "admin",
            "offline",
            "process",
            "--vendor",
            vendor.slug,
            str(request),
            "--out",
            str(update),
        ],
    )
    assert processed.exit_code == 0, processed.output
    imported = runner.invoke(app, ["device", "import", str(update), *common])
    assert imported.exit_code == 0, imported.output
    receipt = next(tmp_path.glob("*receipt*"))
    confirmed = runner.invoke(
        app, ["admin", "offline", "receipt", "--vendor", vendor.slug, str(receipt), "--json"]
    )
    assert confirmed.exit_code == 0 and json.loads(confirmed.output)["confirmed"] == 1
    replay = runner.invoke(app, ["device", "import", str(update), *common])
    assert replay.exit_code == 11  # an old update is refused on the device


def test_the_vendor_side_of_the_round_trip_goes_through_the_api_without_a_database(
    device_env, live_server, tmp_path, monkeypatch
):
    vendor, common, code = device_env
    monkeypatch.chdir(tmp_path)  # no database here, and none is needed
    no_database = {"LICENTIA_DATABASE_URL": None, "LICENTIA_MASTER_KEY": None}
    request, update = tmp_path / "request.jws", tmp_path / "update.jws"
    requested = runner.invoke(app, ["device", "request", str(request), "--ticket", code, *common])
    assert requested.exit_code == 0, requested.output
    vendor_side = ["--vendor", vendor.slug, "--server", live_server, "--json"]
    processed = runner.invoke(
        app,
        ["admin", "offline", "process", str(request), "--out", str(update), *vendor_side],
        env=no_database,
    )
    assert processed.exit_code == 0, processed.output
    assert json.loads(processed.output)["seq"] == 1
    imported = runner.invoke(app, ["device", "import", str(update), *common])
    assert imported.exit_code == 0, imported.output
    receipt = next(tmp_path.glob("*receipt*"))
    confirmed = runner.invoke(
        app, ["admin", "offline", "receipt", str(receipt), *vendor_side], env=no_database
    )
    assert confirmed.exit_code == 0, confirmed.output
    assert json.loads(confirmed.output)["confirmed"] == 1
    assert not (tmp_path / "var").exists()
    again = runner.invoke(
        app,
        ["admin", "offline", "process", str(request), "--out", str(update), *vendor_side],
        env=no_database,
    )
    assert again.exit_code != 0  # the same request twice is a replay: refused with its code
    assert json.loads(again.output)["error"]["code"]


def test_a_vendor_command_run_where_there_is_no_database_says_so_and_creates_none(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    request = tmp_path / "request.jws"
    request.write_text("a.b.c\n")
    result = runner.invoke(
        app,
        ["admin", "offline", "process", "--vendor", "acme", str(request), "--out", "u.jws"],
        env={"LICENTIA_DATABASE_URL": None},
    )
    assert result.exit_code == 6
    assert "DATABASE_MISSING" in result.output and "licentia db upgrade" in result.output
    assert not (tmp_path / "var").exists()


def test_a_return_beyond_the_churn_limit_is_refused_with_its_code_and_exit_13(
    vendors, live_server, tmp_path: Path
):
    vendor = vendors.create()
    template = vendor.template({"churn_limit": {"count": 1, "days": 30}})
    code = vendor.order([{"sku": template["sku"], "quantity": 1}])["ticket_code"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(vendor.client.get(f"/api/v1/vendors/{vendor.slug}/jwks.json").text)
    common = ["--vendor", vendor.slug, "--jwks", str(jwks), "--store", str(tmp_path / "store")]
    activated = runner.invoke(app, ["device", "activate", code, "--server", live_server, *common])
    assert activated.exit_code == 0, activated.output
    status = runner.invoke(app, ["device", "status", *common, "--json"])
    (license_,) = json.loads(status.output)["licenses"]

    returned = runner.invoke(
        app, ["device", "return", license_["license"], "--server", live_server, *common]
    )

    assert returned.exit_code == 13, returned.output
    assert "CHURN_LIMIT_REACHED" in returned.output
    assert "churn limit (1 activations and returns in 30 days)" in returned.output
    assert vendor.ok("GET", f"/licenses/{license_['license']}")["state"] == "activated"
