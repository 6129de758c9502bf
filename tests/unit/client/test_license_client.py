"""LicenseClient offline: what require() allows, what it refuses and why, and the files."""

from __future__ import annotations

import gc
import json
import shutil
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from licentia.client import (
    ClockRollbackError,
    Entitlement,
    FeatureMissingError,
    FingerprintMismatchError,
    LeaseExpiredError,
    LicenseClient,
    LicenseExpiredError,
    MaintenanceEndedError,
    NetworkError,
    NotActivatedError,
    TicketCodeInvalidError,
    TicketRejectedError,
    Virtualization,
    VirtualMachineNotAllowedError,
)
from licentia.client._client import STORE_CHECK_INTERVAL
from licentia.formats.device import device_id, ed25519_from_jwk, state_hash, unverified_claims
from licentia.formats.document_types import RECEIPT_TYP, RETURN_TYP
from licentia.formats.jws import verify_document
from licentia.formats.tickets import generate_ticket_code

from .harness import MACHINE, Harness, virtual_machine
from .vendor import Offer

# -- what require() allows ----------------------------------------------------------


def test_an_activated_product_and_its_features_are_allowed(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(product="editor", features=("edit", "export")))

    entitlement = client.require("editor", "export")

    assert entitlement.product == "editor"
    assert entitlement.features == {"edit", "export"}
    assert client.require("editor").license_id == "L-1"


def test_require_answers_from_memory_without_the_disk_or_the_network(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())
    moved = harness.root / "moved-away"
    shutil.move(harness.root / "device", moved)

    try:
        for _ in range(1000):
            client.require("editor", "edit")
    finally:
        shutil.move(moved, harness.root / "device")

    assert client.require("editor").product == "editor"


def test_a_restarted_application_finds_its_licenses_in_the_store(harness: Harness) -> None:
    harness.activate(harness.client(), Offer())

    restarted = harness.client()

    assert restarted.require("editor", "edit").license_id == "L-1"
    assert [e.license_id for e in restarted.licenses()] == ["L-1"]


def test_of_two_licenses_for_a_product_the_usable_one_is_chosen(harness: Harness) -> None:
    client = harness.client()
    harness.activate(
        client,
        Offer(license_id="L-short", valid_days=1),
        Offer(license_id="L-long", valid_days=365),
    )
    harness.clock.advance(days=2)

    assert client.require("editor").license_id == "L-long"


# -- what require() refuses ------------------------------------------------------------


def test_a_product_without_a_license_is_not_activated(harness: Harness) -> None:
    client = harness.client()
    with pytest.raises(NotActivatedError) as before:
        client.require("editor")
    harness.activate(client, Offer(product="editor"))

    with pytest.raises(NotActivatedError) as other:
        client.require("viewer")

    assert before.value.code == other.value.code == "NOT_ACTIVATED"
    assert "viewer" in other.value.message


def test_a_feature_the_license_lacks_is_missing(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(features=("edit",)))

    with pytest.raises(FeatureMissingError) as caught:
        client.require("editor", "export")

    assert caught.value.code == "FEATURE_MISSING"
    assert "export" in caught.value.message


def test_a_license_past_its_validity_is_expired_before_its_lease_is(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(valid_days=2, lease_days=1, refresh_days=1))

    harness.clock.advance(days=1, hours=1)
    with pytest.raises(LeaseExpiredError) as lease:
        client.require("editor")
    harness.clock.advance(days=1)
    with pytest.raises(LicenseExpiredError) as validity:
        client.require("editor")

    assert (lease.value.code, validity.value.code) == ("LEASE_EXPIRED", "EXPIRED")
    assert "Connect this device to the internet" in lease.value.message


def test_the_lease_ends_at_the_second_it_says(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(lease_days=3, refresh_days=1))
    lease_until = client.licenses()[0].lease_until

    harness.clock.now = lease_until - timedelta(seconds=1)
    client.require("editor")
    harness.clock.now = lease_until
    with pytest.raises(LeaseExpiredError):
        client.require("editor")


def test_a_release_after_the_end_of_maintenance_is_refused(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(maintenance_days=30))
    today = harness.clock.now.date()

    client.require("editor", release_date=today + timedelta(days=30))
    with pytest.raises(MaintenanceEndedError) as caught:
        client.require("editor", release_date=today + timedelta(days=31))

    assert caught.value.code == "MAINTENANCE_ENDED"


def test_without_a_maintenance_period_any_release_runs(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(maintenance_days=None))

    assert client.require("editor", release_date=date(2099, 1, 1)).maintenance_until is None


def test_one_changed_hardware_factor_keeps_the_license(harness: Harness) -> None:
    harness.activate(harness.client(), Offer())

    new_card = harness.client(machine=MACHINE | {"mac_addresses": "a4:bb:6d:00:11:22"})

    assert new_card.require("editor").product == "editor"


def test_more_changed_factors_than_the_template_tolerates_are_a_mismatch(
    harness: Harness,
) -> None:
    harness.activate(harness.client(), Offer())
    # Two of five factors changed: the license (medium) needs four.
    changed = MACHINE | {"mac_addresses": "a4:bb:6d:00:11:22", "disk_serial": "WD-1"}

    with pytest.raises(FingerprintMismatchError) as caught:
        harness.client(machine=changed).require("editor")

    assert caught.value.code == "FINGERPRINT_MISMATCH"
    assert "disk_serial, mac_addresses" in caught.value.message


def test_a_strict_template_refuses_any_changed_factor(harness: Harness) -> None:
    strict = {"fingerprint_tolerance": {"preset": "strict", "k": None, "n": None}}
    harness.activate(harness.client(), Offer(options=strict))

    with pytest.raises(FingerprintMismatchError):
        harness.client(machine=MACHINE | {"hostname": "renamed"}).require("editor")


def test_a_k_of_n_template_counts_matching_factors(harness: Harness) -> None:
    two_of_five = {"fingerprint_tolerance": {"preset": None, "k": 2, "n": 5}}
    harness.activate(harness.client(), Offer(options=two_of_five))
    three_changed = MACHINE | {"hostname": "x", "disk_serial": "y", "mac_addresses": "z"}
    four_changed = three_changed | {"product_uuid": "w"}

    harness.client(machine=three_changed).require("editor")
    with pytest.raises(FingerprintMismatchError):
        harness.client(machine=four_changed).require("editor")


def test_a_license_that_denies_vms_refuses_to_run_in_one(harness: Harness) -> None:
    harness.activate(harness.client(), Offer(options={"vm_policy": "deny"}))

    with pytest.raises(VirtualMachineNotAllowedError) as vm:
        harness.client(probe=virtual_machine).require("editor")
    with pytest.raises(VirtualMachineNotAllowedError):
        harness.client(probe=lambda: Virtualization(container="docker")).require("editor")

    assert vm.value.code == "VM_NOT_ALLOWED"
    assert "kvm" in vm.value.message


def test_a_license_that_allows_vms_runs_in_one(harness: Harness) -> None:
    harness.activate(harness.client(), Offer(options={"vm_policy": "allow"}))

    assert harness.client(probe=virtual_machine).require("editor").product == "editor"


def test_a_clock_set_back_beyond_the_tolerance_is_refused(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())
    harness.clock.advance(hours=5)
    client.require("editor")

    harness.clock.advance(hours=-1)
    client.require("editor")  # an hour back is within the tolerance
    harness.clock.advance(hours=-3)
    with pytest.raises(ClockRollbackError) as caught:
        client.require("editor")

    assert caught.value.code == "CLOCK_ROLLBACK"
    assert client.status().problem is not None


def test_a_rollback_is_still_detected_after_a_restart(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())
    harness.clock.advance(days=3)
    client.require("editor")
    client.close()

    harness.clock.advance(days=-3)

    with pytest.raises(ClockRollbackError):
        harness.client().require("editor")


def test_a_client_left_to_the_garbage_collector_keeps_its_time_mark(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())
    harness.clock.advance(minutes=5)  # too little for the background writer to persist
    client.require("editor")
    del client
    gc.collect()

    # Two hours behind the mark of the collected client, not behind the activation's.
    harness.clock.advance(hours=-2, minutes=-3)

    with pytest.raises(ClockRollbackError):
        harness.client().require("editor")


def test_an_update_file_does_not_turn_back_the_time_mark(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())
    harness.clock.advance(hours=5)
    client.require("editor")
    request = client.create_offline_request(harness.root / "second.request")
    # The vendor answers with its own (correct) time, five hours behind this device's.
    update = harness.vendor.answer(
        request, harness.root / "second.update", Offer(), now=harness.clock.now - timedelta(hours=5)
    )
    client.import_update(update)

    harness.clock.advance(hours=-5)

    with pytest.raises(ClockRollbackError):
        client.require("editor")


def test_the_same_error_can_be_raised_again_and_again(harness: Harness) -> None:
    client = harness.client(probe=virtual_machine)
    harness.activate(client, Offer(options={"vm_policy": "deny"}))
    errors = []
    for _ in range(3):
        with pytest.raises(VirtualMachineNotAllowedError) as caught:
            client.require("editor")
        errors.append(caught.value)

    assert len({id(e) for e in errors}) == 3
    assert {e.message for e in errors} == {errors[0].message}


# -- licenses, status and custom data ---------------------------------------------------


def test_status_shows_the_leases_and_when_a_sync_is_due(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(lease_days=30, refresh_days=7))

    fresh = client.status()
    harness.clock.advance(days=8)
    due = client.status()

    assert (fresh.seq, fresh.refresh_due, fresh.problem) == (1, False, None)
    assert fresh.device_id == client.device_id
    (entitlement,) = fresh.licenses
    assert fresh.next_refresh == entitlement.refresh_after
    assert entitlement.lease_until - entitlement.refresh_after == timedelta(days=23)
    assert fresh.last_sync is not None
    assert due.refresh_due


def test_custom_data_is_readable_and_secret_data_only_with_the_device_key(
    harness: Harness,
) -> None:
    client = harness.client()
    offer = Offer(public="Thanks for buying", protected={"seats": 5}, secret="s3cr3t-key")
    harness.activate(client, offer)

    entitlement = client.require("editor")

    assert entitlement.public_data == "Thanks for buying"
    assert entitlement.protected_data == {"seats": 5}
    assert entitlement.has_secret_data
    assert entitlement.secret_data == "s3cr3t-key"
    stored = (harness.root / "device" / "state.json").read_text()
    assert "s3cr3t-key" not in stored


def test_a_license_without_secret_data_has_none(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())

    assert client.require("editor").secret_data is None


# -- files -------------------------------------------------------------------------------


def _verified_by_device(client: LicenseClient, harness: Harness, token: str, typ: str) -> dict:
    """Check ``token`` with the device key that ``client``'s request files carry."""
    request = client.create_offline_request(harness.root / "key.request").read_text().strip()
    key = ed25519_from_jwk(unverified_claims(request)["device_key"])
    return verify_document(token, {device_id(key): key}, typ=typ)


def test_a_request_file_is_signed_by_the_device_and_says_what_it_holds(
    harness: Harness,
) -> None:
    client = harness.client()
    code = generate_ticket_code()
    request = client.create_offline_request(harness.root / "r.request", ticket=code.lower())

    claims = harness.vendor.read_request(request).claims

    assert claims["iss"] == client.device_id
    assert (claims["op"], claims["ticket"], claims["seq"]) == ("offline", code, 0)
    assert claims["state"] == state_hash([])
    assert set(claims["fingerprint"]) == set(MACHINE)
    assert not set(MACHINE.values()) & set(claims["fingerprint"].values())


def test_importing_an_update_writes_a_receipt_for_its_sequence_and_state(
    harness: Harness,
) -> None:
    client = harness.client()

    receipt = harness.activate(client, Offer(version=4))

    assert receipt == harness.root / "update.receipt"
    claims = _verified_by_device(client, harness, receipt.read_text().strip(), RECEIPT_TYP)
    assert (claims["seq"], claims["state"]) == (1, state_hash([("L-1", 4)]))
    assert claims["aud"] == harness.vendor.slug


def test_the_receipt_goes_where_the_caller_says(harness: Harness) -> None:
    client = harness.client()
    update = harness.update_file(client, Offer())

    receipt = client.import_update(update, harness.root / "out" / "confirm.jws")

    assert receipt == harness.root / "out" / "confirm.jws"
    assert receipt.read_text().count(".") == 2


def test_each_update_replaces_the_whole_container(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(license_id="L-1"), name="first")
    harness.activate(client, Offer(license_id="L-2", product="viewer"), name="second")

    assert [e.license_id for e in client.licenses()] == ["L-2"]
    with pytest.raises(NotActivatedError):
        client.require("editor")
    assert client.status().seq == 2


def test_a_return_file_removes_the_license_first_and_proves_it(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())

    proof = client.create_return_file("L-1", harness.root / "return.jws")

    with pytest.raises(NotActivatedError):
        client.require("editor")
    with pytest.raises(NotActivatedError):
        harness.client().require("editor")
    claims = _verified_by_device(client, harness, proof.read_text().strip(), RETURN_TYP)
    assert (claims["license"], claims["seq"]) == ("L-1", 1)


def test_a_license_this_device_does_not_hold_cannot_be_returned(harness: Harness) -> None:
    client = harness.client()

    with pytest.raises(NotActivatedError):
        client.create_return_file("L-404", harness.root / "return.jws")

    assert not (harness.root / "return.jws").exists()


def test_a_mistyped_ticket_is_refused_before_a_request_file_is_written(
    harness: Harness,
) -> None:
    client = harness.client()
    code = generate_ticket_code()
    typo = code[:-1] + ("0" if code[-1] != "0" else "1")

    with pytest.raises(TicketCodeInvalidError) as refused:
        client.create_offline_request(harness.root / "r.request", ticket=typo)

    assert (refused.value.code, refused.value.status) == ("TICKET_CODE_INVALID", None)
    assert isinstance(refused.value, TicketRejectedError)
    assert not (harness.root / "r.request").exists()


def test_a_client_without_a_server_refuses_online_calls(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())

    code = generate_ticket_code()
    for call in (lambda: client.activate(code), client.sync, lambda: client.return_license("L-1")):
        with pytest.raises(NetworkError, match="file-based"):
            call()
    with pytest.raises(NetworkError):
        client.start_auto_update()


def test_the_store_keeps_no_raw_hardware_id(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer())

    stored = json.dumps(
        [p.read_text() for p in (harness.root / "device").rglob("*") if p.is_file()]
    )

    for raw in MACHINE.values():
        assert raw not in stored


def test_times_are_utc(harness: Harness) -> None:
    client = harness.client()
    harness.activate(client, Offer(valid_days=10, maintenance_days=10))
    entitlement = client.require("editor")

    for moment in (
        entitlement.issued_at,
        entitlement.valid_until,
        entitlement.lease_until,
        entitlement.refresh_after,
        entitlement.maintenance_until,
    ):
        assert isinstance(moment, datetime) and moment.tzinfo == UTC


def test_an_entitlement_read_from_the_store_is_a_complete_frozen_value(
    harness: Harness,
) -> None:
    harness.activate(harness.client(), Offer(public="hello"))
    entitlement = harness.client().licenses()[0]  # a cold start: read from the store

    # The cold start builds it without __init__: it holds what __init__ would have set.
    built = Entitlement(*(getattr(entitlement, name) for name in Entitlement._fields))
    assert vars(built) == vars(entitlement)
    assert "public_data='hello'" in repr(entitlement)
    assert "options=" not in repr(entitlement)
    with pytest.raises(AttributeError, match="read-only"):
        entitlement.product = "another"


def test_a_running_application_sees_an_activation_made_by_another_process(
    harness: Harness,
) -> None:
    application = harness.client()
    with pytest.raises(NotActivatedError):
        application.require("editor")

    harness.activate(harness.client(), Offer())  # the activation wizard, say
    time.sleep(STORE_CHECK_INTERVAL)  # a failing check looks at the store once a second

    assert application.require("editor").license_id == "L-1"


def test_a_container_with_many_licenses_imports_whole(harness: Harness) -> None:
    # The update then outgrows the JOSE library's default 128 kB payload limit.
    client = harness.client()
    offers = [Offer(license_id=f"L-{n:03}", product=f"product-{n}") for n in range(150)]

    update = harness.update_file(client, *offers)
    client.import_update(update)

    assert update.stat().st_size > 200_000
    assert len(client.licenses()) == 150
    assert client.require("product-149").license_id == "L-149"


def test_a_product_the_device_does_not_hold_is_not_activated_whatever_the_clock(
    harness: Harness,
) -> None:
    client = harness.client()
    harness.activate(client, Offer(product="editor"))
    harness.clock.advance(days=3)
    client.require("editor")
    harness.clock.advance(days=-3)

    with pytest.raises(NotActivatedError):
        client.require("viewer")
    with pytest.raises(ClockRollbackError):
        client.require("editor")
