"""The client SDK against a real License Central (uvicorn on a loopback port), on SQLite
and PostgreSQL: activation, offline use, leases, syncs, files, returns, blacklists.

The server's clock is real, so time-driven behaviour moves the *device* clock and says
what the server does with a device whose clock is off.
"""

from __future__ import annotations

import json
import re
import runpy
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from licentia.client import (
    ClockRollbackError,
    DeviceBlacklistedError,
    DeviceFlaggedError,
    FingerprintMismatchError,
    LeaseExpiredError,
    LicenseClient,
    LicenseExpiredError,
    NetworkError,
    NotActivatedError,
    ServerError,
    TicketCodeInvalidError,
    TicketRejectedError,
    TransferLimitReachedError,
    UpdateReplayedError,
    Virtualization,
    VirtualMachineNotAllowedError,
)
from licentia.formats.tickets import generate_ticket_code
from tests.factories import VendorHandle

MACHINE_A = {
    "machine_id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    "product_uuid": "4c4c4544-0042-3510-8051-b4c04f4e3432",
    "mac_addresses": "3c:52:82:1a:2b:3c",
    "disk_serial": "S4EWNX0R123456",
    "hostname": "design-01",
}
MACHINE_B = {name: f"b-{value}" for name, value in MACHINE_A.items()}
JOSE = {"Content-Type": "application/jose"}


class DeviceClock:
    """The device's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@dataclass
class Lab:
    """One vendor on the live server, and the devices a test builds for it."""

    vendor: VendorHandle
    server: str
    root: Path
    jwks: dict[str, Any]
    clients: list[LicenseClient] = field(default_factory=list)

    def device(
        self,
        name: str = "a",
        *,
        machine: dict[str, str] | None = None,
        clock: Callable[[], datetime] | None = None,
        server: str | bool | None = True,
        virtual: bool = False,
    ) -> LicenseClient:
        factors = dict(machine or MACHINE_A)
        client = LicenseClient(
            self.server if server is True else (server or None),
            self.vendor.slug,
            self.jwks,
            store_dir=self.root / name,
            factor_source=lambda: factors,
            virtualization_probe=lambda: Virtualization(vm="kvm" if virtual else None),
            local_clock=clock,
        )
        self.clients.append(client)
        return client

    def ticket(self, quantity: int = 1, **options: Any) -> tuple[str, dict[str, Any]]:
        template = self.vendor.template(options)
        order = self.vendor.order([{"sku": template["sku"], "quantity": quantity}])
        return order["ticket_code"], order

    def post(self, endpoint: str, path: Path) -> httpx.Response:
        """Upload a device's file, as the License Portal does."""
        url = f"{self.server}/api/v1/vendors/{self.vendor.slug}/devices/{endpoint}"
        return httpx.post(url, content=path.read_text().strip(), headers=JOSE)

    def process(self, request: Path, update: Path) -> Path:
        response = self.post("offline", request)
        assert response.status_code == 200, response.text
        update.write_text(response.text)
        return update

    def license(self, license_id: str) -> dict[str, Any]:
        return self.vendor.ok("GET", f"/licenses/{license_id}")

    def server_device(self, device_id: str) -> dict[str, Any]:
        (found,) = [
            d for d in self.vendor.ok("GET", "/devices")["items"] if d["key_id"] == device_id
        ]
        return found


@pytest.fixture
def lab(vendors, live_server: str, tmp_path: Path):
    vendor = vendors.create()
    jwks = httpx.get(f"{live_server}/api/v1/vendors/{vendor.slug}/jwks.json").json()
    lab = Lab(vendor, live_server, tmp_path, jwks)
    yield lab
    for client in lab.clients:
        client.close()


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# -- online activation and offline use ---------------------------------------------------


def test_an_activated_device_keeps_working_while_license_central_is_down(
    lab: Lab, dead_server_url: str
) -> None:
    code, _ = lab.ticket()
    (entitlement,) = lab.device().activate(code)

    offline = lab.device(server=dead_server_url)

    assert offline.require(entitlement.product, "edit").license_id == entitlement.license_id
    with pytest.raises(NetworkError):
        offline.sync()
    assert offline.require(entitlement.product, "export").product == entitlement.product
    assert lab.license(entitlement.license_id)["state"] == "activated"


def test_activating_the_same_ticket_again_consumes_nothing_more(lab: Lab) -> None:
    code, order = lab.ticket(quantity=2)
    device = lab.device()

    first = device.activate(code)
    again = device.activate(code)

    assert [e.license_id for e in first] == [e.license_id for e in again]
    ticket = lab.vendor.ok("GET", f"/tickets/{order['ticket_id']}")
    states = sorted(lab.license(i)["state"] for i in ticket["license_ids"])
    assert states == ["activated", "available"]


def test_a_ticket_license_central_does_not_know_is_rejected(lab: Lab) -> None:
    lab.ticket()
    unknown = generate_ticket_code()  # well-formed, so it is License Central that says no

    with pytest.raises(TicketRejectedError) as caught:
        lab.device().activate(unknown)

    assert (caught.value.server_code, caught.value.status) == ("TICKET_NOT_FOUND", 404)


def test_a_mistyped_ticket_is_refused_before_it_is_sent(lab: Lab) -> None:
    code, _ = lab.ticket()
    wrong = code[:-1] + ("A" if code[-1] != "A" else "B")

    with pytest.raises(TicketCodeInvalidError) as caught:
        lab.device().activate(wrong)

    assert (caught.value.code, caught.value.status) == ("TICKET_CODE_INVALID", None)


def test_a_vm_is_refused_by_the_server_when_the_template_denies_it(lab: Lab) -> None:
    code, _ = lab.ticket(vm_policy="deny")

    with pytest.raises(VirtualMachineNotAllowedError) as caught:
        lab.device(virtual=True).activate(code)

    assert (caught.value.server_code, caught.value.status) == ("VM_NOT_ALLOWED", 403)


def test_secret_data_reaches_only_the_device_it_was_encrypted_to(lab: Lab) -> None:
    code, _ = lab.ticket(custom_data={"public": "Welcome", "secret": "db-password-42"})

    (entitlement,) = lab.device().activate(code)

    assert entitlement.public_data == "Welcome"
    assert entitlement.secret_data == "db-password-42"
    assert "db-password-42" not in (lab.root / "a" / "state.json").read_text()


# -- leases, clocks and syncs --------------------------------------------------------------


def test_a_lease_that_ran_out_offline_is_renewed_by_a_sync(lab: Lab) -> None:
    code, _ = lab.ticket(lease_days=1, refresh_days=1)
    clock = DeviceClock()
    device = lab.device(clock=clock)
    (activated,) = device.activate(code)
    time.sleep(1.1)  # the renewed lease must end at a later second than the first

    clock.offset = timedelta(hours=25)  # a day offline
    with pytest.raises(LeaseExpiredError) as expired:
        device.require(activated.product)
    assert device.status().refresh_due
    # License Central accepts requests only from a clock within minutes of its own.
    with pytest.raises(ServerError) as skewed:
        device.sync()
    assert skewed.value.server_code == "REQUEST_EXPIRED"

    clock.offset = timedelta(0)  # back in step with the server
    with pytest.raises(ClockRollbackError):
        device.require(activated.product)
    result = device.sync()

    assert expired.value.code == "LEASE_EXPIRED"
    assert result.changed and result.updated == ()
    (renewed,) = result.licenses
    assert renewed.lease_until > activated.lease_until
    assert device.require(activated.product).lease_until == renewed.lease_until
    assert device.status().problem is None


def test_an_unchanged_container_syncs_with_a_304(lab: Lab) -> None:
    code, _ = lab.ticket()
    device = lab.device()
    device.activate(code)
    seq = device.status().seq

    result = device.sync()

    assert (result.changed, result.seq, result.added, result.removed) == (False, seq, (), ())
    assert lab.server_device(device.device_id)["seq"] == seq
    assert lab.server_device(device.device_id)["confirmed_seq"] == seq


def test_a_clock_set_back_is_refused_until_a_sync_with_the_right_time(lab: Lab) -> None:
    code, _ = lab.ticket()
    clock = DeviceClock()
    device = lab.device(clock=clock)
    (entitlement,) = device.activate(code)
    clock.offset = timedelta(hours=3)  # the clock ran ahead for a while
    device.require(entitlement.product)

    clock.offset = timedelta(0)
    with pytest.raises(ClockRollbackError):
        device.require(entitlement.product)
    problem = device.status().problem
    device.sync()

    assert problem is not None and problem.code == "CLOCK_ROLLBACK"
    assert device.require(entitlement.product).license_id == entitlement.license_id


def test_a_clock_that_is_still_wrong_cannot_sync_its_way_out(lab: Lab) -> None:
    code, _ = lab.ticket()
    clock = DeviceClock()
    device = lab.device(clock=clock)
    (entitlement,) = device.activate(code)

    clock.offset = -timedelta(days=3)
    with pytest.raises(ServerError) as caught:
        device.sync()

    assert caught.value.server_code == "REQUEST_EXPIRED"
    with pytest.raises(ClockRollbackError):
        device.require(entitlement.product)


def test_a_vendor_extension_reaches_the_device_at_its_next_sync(lab: Lab) -> None:
    code, _ = lab.ticket(validity={"kind": "days_from_issue", "days": 10})
    device = lab.device()
    (before,) = device.activate(code)
    assert before.valid_until is not None

    lab.vendor.ok("POST", f"/licenses/{before.license_id}/actions/extend", json={"days": 5})
    result = device.sync()

    assert result.changed and result.updated == (before.license_id,)
    (after,) = result.licenses
    assert after.valid_until == before.valid_until + timedelta(days=5)
    assert device.require(after.product).version == before.version + 1


def test_a_license_past_its_validity_is_expired_on_the_device(lab: Lab) -> None:
    code, _ = lab.ticket(validity={"kind": "days_from_issue", "days": 1})
    clock = DeviceClock()
    device = lab.device(clock=clock)
    (entitlement,) = device.activate(code)

    clock.offset = timedelta(days=2)

    with pytest.raises(LicenseExpiredError):
        device.require(entitlement.product)


def test_a_withdrawn_license_disappears_at_the_next_sync(lab: Lab) -> None:
    code, _ = lab.ticket()
    device = lab.device()
    (entitlement,) = device.activate(code)

    lab.vendor.ok("POST", f"/licenses/{entitlement.license_id}/actions/withdraw")
    result = device.sync()

    assert result.removed == (entitlement.license_id,)
    with pytest.raises(NotActivatedError):
        device.require(entitlement.product)
    assert device.licenses() == []


def test_an_upgrade_brings_new_features_at_the_next_sync(lab: Lab) -> None:
    product = lab.vendor.product(features=("edit", "render"))
    basic = lab.vendor.template(product=product, features=["edit"])
    pro = lab.vendor.template(product=product, features=["edit", "render"])
    order = lab.vendor.order([{"sku": basic["sku"], "quantity": 1}])
    device = lab.device()
    (old,) = device.activate(order["ticket_code"])
    assert "render" not in old.features

    lab.vendor.ok("POST", f"/licenses/{old.license_id}/actions/replace", json={"sku": pro["sku"]})
    result = device.sync()

    assert result.removed == (old.license_id,) and len(result.added) == 1
    assert device.require(product["code"], "render").license_id == result.added[0]


def test_two_applications_sharing_a_store_do_not_trip_over_each_others_syncs(
    lab: Lab,
) -> None:
    code, _ = lab.ticket(validity={"kind": "days_from_issue", "days": 10})
    first, second = lab.device(), lab.device()
    (entitlement,) = first.activate(code)
    second.require(entitlement.product)
    lab.vendor.ok("POST", f"/licenses/{entitlement.license_id}/actions/extend", json={"days": 1})

    first.sync()
    second.sync()  # re-reads the store first: no stale sequence reaches the server

    assert second.status().seq == first.status().seq
    assert lab.server_device(first.device_id)["flags"] == []


# -- files ---------------------------------------------------------------------------------


def test_the_three_file_round_trip_activates_a_machine_without_internet(lab: Lab) -> None:
    code, _ = lab.ticket()
    device = lab.device(server=None)

    request = device.create_offline_request(lab.root / "activate.request", ticket=code)
    update = lab.process(request, lab.root / "activate.update")
    receipt = device.import_update(update)
    confirmed = lab.post("receipts", receipt)

    (entitlement,) = device.licenses()
    assert device.require(entitlement.product).license_id == entitlement.license_id
    assert confirmed.json() == {"confirmed": 1}
    assert lab.server_device(device.device_id)["confirmed_seq"] == 1


def test_an_old_update_file_is_refused_and_a_lost_receipt_is_folded_in(lab: Lab) -> None:
    code, _ = lab.ticket(validity={"kind": "days_from_issue", "days": 10})
    device = lab.device(server=None)
    first = lab.process(
        device.create_offline_request(lab.root / "1.request", ticket=code), lab.root / "1.update"
    )
    lab.post("receipts", device.import_update(first))
    (entitlement,) = device.licenses()
    lab.vendor.ok("POST", f"/licenses/{entitlement.license_id}/actions/extend", json={"days": 3})

    second = lab.process(
        device.create_offline_request(lab.root / "2.request"), lab.root / "2.update"
    )
    device.import_update(second)  # its receipt is lost on the way
    with pytest.raises(UpdateReplayedError):
        device.import_update(first)
    with pytest.raises(UpdateReplayedError):
        device.import_update(second)
    third = lab.process(
        device.create_offline_request(lab.root / "3.request"), lab.root / "3.update"
    )
    receipt = device.import_update(third)

    assert lab.post("receipts", receipt).json() == {"confirmed": 3}
    assert entitlement.valid_until is not None
    extended = entitlement.valid_until + timedelta(days=3)
    assert device.require(entitlement.product).valid_until == extended
    server_view = lab.server_device(device.device_id)
    assert (server_view["confirmed_seq"], server_view["flags"]) == (3, [])


def test_a_return_file_frees_the_license_for_another_machine(lab: Lab) -> None:
    code, _ = lab.ticket()
    first = lab.device("a", server=None)
    lab.post(
        "receipts",
        first.import_update(
            lab.process(first.create_offline_request(lab.root / "r", ticket=code), lab.root / "u")
        ),
    )
    (entitlement,) = first.licenses()

    proof = first.create_return_file(entitlement.license_id, lab.root / "return.proof")
    with pytest.raises(NotActivatedError):
        first.require(entitlement.product)
    returned = lab.post("returns", proof)

    assert returned.json() == {"license": entitlement.license_id, "state": "returned"}
    (moved,) = lab.device("b", machine=MACHINE_B).activate(code)
    assert moved.license_id == entitlement.license_id


# -- return, transfer, blacklist ----------------------------------------------------------------


def test_a_returned_license_can_be_activated_on_another_machine(lab: Lab) -> None:
    code, _ = lab.ticket()
    first, second = lab.device("a"), lab.device("b", machine=MACHINE_B)
    (entitlement,) = first.activate(code)
    with pytest.raises(TicketRejectedError) as taken:
        second.activate(code)

    first.return_license(entitlement.license_id)

    assert taken.value.server_code == "NO_LICENSE_AVAILABLE"
    with pytest.raises(NotActivatedError):
        first.require(entitlement.product)
    assert lab.license(entitlement.license_id)["state"] == "returned"
    (moved,) = second.activate(code)
    assert moved.license_id == entitlement.license_id
    assert second.device_id != first.device_id
    assert first.sync().licenses == ()


def test_the_transfer_limit_keeps_the_license_where_it_is(lab: Lab) -> None:
    code, _ = lab.ticket(transfer_limit={"returns": 1, "period_days": 30})
    first, second = lab.device("a"), lab.device("b", machine=MACHINE_B)
    (entitlement,) = first.activate(code)
    first.return_license(entitlement.license_id)
    second.activate(code)

    with pytest.raises(TransferLimitReachedError) as caught:
        second.return_license(entitlement.license_id)

    assert (caught.value.code, caught.value.status) == ("TRANSFER_LIMIT_REACHED", 409)
    assert second.require(entitlement.product).license_id == entitlement.license_id
    assert lab.license(entitlement.license_id)["state"] == "activated"


def test_a_refused_return_file_gives_the_license_back_at_the_next_sync(lab: Lab) -> None:
    code, _ = lab.ticket(transfer_limit={"returns": 0, "period_days": 30})
    device = lab.device()
    (entitlement,) = device.activate(code)

    proof = device.create_return_file(entitlement.license_id, lab.root / "return.proof")
    refused = lab.post("returns", proof)
    result = device.sync()

    assert refused.json()["code"] == "TRANSFER_LIMIT_REACHED"
    assert result.added == (entitlement.license_id,)
    assert device.require(entitlement.product).license_id == entitlement.license_id


def test_a_blacklisted_device_loses_its_licenses_and_cannot_activate(lab: Lab) -> None:
    code, _ = lab.ticket()
    device = lab.device()
    (entitlement,) = device.activate(code)

    lab.vendor.ok("POST", f"/devices/{lab.server_device(device.device_id)['id']}/actions/blacklist")
    result = device.sync()

    assert result.removed == (entitlement.license_id,)
    assert result.device_status == "blacklisted"
    with pytest.raises(NotActivatedError):
        device.require(entitlement.product)
    with pytest.raises(DeviceBlacklistedError) as caught:
        device.activate(code)
    assert caught.value.server_code == "DEVICE_BLACKLISTED"


# -- copies and restored backups, seen by the server ---------------------------------------------


def test_a_store_copied_to_other_hardware_is_refused_here_and_flagged_there(lab: Lab) -> None:
    code, _ = lab.ticket()
    (entitlement,) = lab.device("a").activate(code)
    shutil.copytree(lab.root / "a", lab.root / "copy")
    # The cloned disk keeps the machine id and hostname; the hardware is other.
    clone = lab.device(
        "copy",
        machine=MACHINE_A
        | {k: MACHINE_B[k] for k in ("product_uuid", "mac_addresses", "disk_serial")},
    )

    with pytest.raises(FingerprintMismatchError):
        clone.require(entitlement.product)
    with pytest.raises(FingerprintMismatchError) as flagged:
        clone.sync()

    assert flagged.value.server_code == "FINGERPRINT_MISMATCH"
    assert lab.server_device(clone.device_id)["flags"] == ["clone_suspected"]


def test_a_whole_store_restored_from_a_backup_is_caught_at_the_next_sync(lab: Lab) -> None:
    code, _ = lab.ticket(validity={"kind": "days_from_issue", "days": 10})
    device = lab.device("a")
    (entitlement,) = device.activate(code)
    shutil.copytree(lab.root / "a", lab.root / "backup")
    lab.vendor.ok("POST", f"/licenses/{entitlement.license_id}/actions/extend", json={"days": 1})
    device.sync()
    device.sync()  # confirms the extension's sequence to the server
    device.close()

    shutil.rmtree(lab.root / "a")
    shutil.copytree(lab.root / "backup", lab.root / "a")
    restored = lab.device("a")
    restored.require(entitlement.product)  # offline, a complete backup is indistinguishable

    with pytest.raises(DeviceFlaggedError) as caught:
        restored.sync()
    assert caught.value.server_code == "DEVICE_FLAGGED"
    assert lab.server_device(restored.device_id)["flags"] == ["replay_suspected"]


# -- auto-update ---------------------------------------------------------------------------------


def test_the_auto_update_clears_a_rolled_back_clock_in_the_background(lab: Lab) -> None:
    code, _ = lab.ticket()
    clock = DeviceClock()
    device = lab.device(clock=clock)
    (entitlement,) = device.activate(code)
    clock.offset = timedelta(hours=3)
    device.require(entitlement.product)
    clock.offset = timedelta(0)
    with pytest.raises(ClockRollbackError):
        device.require(entitlement.product)

    device.start_auto_update(jitter=timedelta(0), check_interval=timedelta(milliseconds=20))
    try:
        assert _wait_until(lambda: device.status().problem is None)
        assert device.require(entitlement.product).license_id == entitlement.license_id
        assert device.status().auto_update_running
    finally:
        device.stop_auto_update()

    assert not device.status().auto_update_running


def test_the_auto_update_backs_off_and_reports_while_the_server_is_down(
    lab: Lab, dead_server_url: str
) -> None:
    code, _ = lab.ticket(lease_days=2, refresh_days=1)
    clock = DeviceClock()
    (entitlement,) = lab.device(clock=clock).activate(code)
    offline = lab.device(clock=clock, server=dead_server_url)
    clock.offset = timedelta(hours=25)  # past refresh_after, within the lease

    offline.start_auto_update(
        jitter=timedelta(0),
        max_backoff=timedelta(milliseconds=50),
        check_interval=timedelta(milliseconds=20),
    )
    try:
        assert _wait_until(lambda: offline.status().auto_update_error is not None)
        started = time.perf_counter()
        assert offline.require(entitlement.product).license_id == entitlement.license_id
        assert time.perf_counter() - started < 0.05  # never waits for the background sync
    finally:
        offline.stop_auto_update()

    status = offline.status()
    assert isinstance(status.auto_update_error, NetworkError)
    assert status.refresh_due and not status.auto_update_running


# -- the guide's example -------------------------------------------------------------------------


def test_the_example_in_the_sdk_guide_runs_as_written(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    guide = (Path(__file__).parents[2] / "docs" / "sdk.md").read_text()
    example = re.search(r'```python\n("""licensing\.py.*?)```', guide, re.DOTALL)
    assert example is not None, "docs/sdk.md lost its complete example"
    product = lab.vendor.product(features=("edit", "export-pdf"))
    template = lab.vendor.template({}, product=product)
    order = lab.vendor.order([{"sku": template["sku"], "quantity": 1}])
    # Only the vendor's names change: its slug, its server, its product code.
    script = (
        example.group(1)
        .replace('VENDOR = "acme"', f'VENDOR = "{lab.vendor.slug}"')
        .replace('"https://licenses.acme.example"', f'"{lab.server}"')
        .replace('require("CAD"', f'require("{product["code"]}"')
    )
    (lab.root / "licensing.py").write_text(script)
    (lab.root / "acme-jwks.json").write_text(json.dumps(lab.jwks))
    monkeypatch.setenv("XDG_DATA_HOME", str(lab.root / "data"))
    monkeypatch.setattr("builtins.input", lambda prompt: order["ticket_code"])

    runpy.run_path(str(lab.root / "licensing.py"), run_name="__main__")

    output = capsys.readouterr().out
    assert f"Activated {product['code']}" in output
    assert output.strip().endswith("exported")
