"""The end user's commands (`licentia device …`, `licentia-activate`) and the vendor's
offline command, against a live License Central."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from licentia.cli.device import wizard
from licentia.cli.main import app
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


def test_a_typo_in_the_ticket_is_a_message_and_a_non_zero_exit(device_env, live_server):
    _, common, code = device_env
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")
    result = runner.invoke(app, ["device", "activate", typo, "--server", live_server, *common])
    assert result.exit_code == 13
    assert "TICKET_CODE_INVALID" in result.output


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
