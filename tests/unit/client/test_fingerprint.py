"""Fingerprints: hashed factors matched with a tolerance."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licentia.client import (
    Fingerprint,
    FingerprintMismatchError,
    SystemFactorSource,
    Tolerance,
    collect_fingerprint,
    ensure_fingerprint_matches,
    hash_factors,
    match_fingerprint,
)
from licentia.client._fingerprint import fingerprint_matches
from licentia.formats import fingerprint as shared_rule

from .fakes import Machine

SALT = b"vendor-acme-fingerprint-salt"

factor_names = st.lists(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12),
    min_size=1,
    max_size=10,
    unique=True,
)
hex_ids = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)


def _fingerprint(names: list[str], suffix: str = "") -> Fingerprint:
    return hash_factors({name: f"value-of-{name}{suffix}" for name in names}, SALT)


def _with_changed(recorded: Fingerprint, changed: list[str]) -> Fingerprint:
    current = recorded.as_dict()
    current.update(_fingerprint(changed, suffix="-new").as_dict())
    return Fingerprint(current)


# -- hashing -------------------------------------------------------------------------


@given(machine_id=hex_ids, product_uuid=hex_ids)
def test_raw_ids_never_appear_in_the_fingerprint(machine_id: str, product_uuid: str) -> None:
    fingerprint = hash_factors({"machine_id": machine_id, "product_uuid": product_uuid}, SALT)

    serialized = json.dumps(fingerprint.as_dict())
    assert machine_id not in serialized
    assert product_uuid not in serialized
    assert all(len(digest) == 64 for digest in fingerprint.values())


def test_a_real_machine_fingerprint_holds_no_raw_value(tmp_path: Path) -> None:
    machine = Machine()
    fingerprint = collect_fingerprint(SALT, SystemFactorSource(machine.build(tmp_path)))

    serialized = json.dumps(fingerprint.as_dict()).lower()
    for raw in (machine.machine_id, machine.product_uuid, machine.disk_serial, "3c:52:82"):
        assert raw is not None and raw.lower() not in serialized


def test_the_same_machine_gives_the_same_fingerprint_for_one_vendor_only() -> None:
    factors = {"machine_id": "3d1219c7c4c5404aaa1f6d2a48adfda4"}

    assert hash_factors(factors, SALT) == hash_factors(factors, SALT)
    assert hash_factors(factors, SALT) != hash_factors(factors, b"another-vendor")


def test_cosmetic_differences_do_not_change_a_factor() -> None:
    assert hash_factors({"cpu_model": "  Intel  Core i7 \n"}, SALT) == hash_factors(
        {"cpu_model": "intel core i7"}, SALT
    )


def test_equal_values_under_two_names_hash_differently() -> None:
    fingerprint = hash_factors({"a": "same", "b": "same"}, SALT)

    assert fingerprint["a"] != fingerprint["b"]


def test_empty_factors_are_dropped_and_an_empty_salt_is_refused() -> None:
    assert list(hash_factors({"hostname": "  ", "machine_id": "x"}, SALT)) == ["machine_id"]
    with pytest.raises(ValueError, match="salt"):
        hash_factors({"machine_id": "x"}, b"")


def test_a_fingerprint_holds_only_sha256_hex_digests() -> None:
    with pytest.raises(ValueError, match="machine_id"):
        Fingerprint({"machine_id": "3d1219c7c4c5404a"})


# -- tolerance -----------------------------------------------------------------------


@given(names=factor_names, data=st.data())
def test_k_of_n_matches_exactly_when_at_least_k_factors_are_unchanged(
    names: list[str], data: st.DataObject
) -> None:
    n = len(names)
    k = data.draw(st.integers(min_value=1, max_value=n), label="k")
    changed = data.draw(st.lists(st.sampled_from(names), unique=True), label="changed")
    recorded = _fingerprint(names)

    result = match_fingerprint(recorded, _with_changed(recorded, changed), Tolerance.at_least(k))

    assert result.ok == (len(changed) <= n - k)
    assert set(result.changed) == set(changed)


@given(names=factor_names, data=st.data())
def test_presets_are_k_of_n_with_a_fixed_k(names: list[str], data: st.DataObject) -> None:
    n = len(names)
    changed = data.draw(st.lists(st.sampled_from(names), unique=True), label="changed")
    recorded = _fingerprint(names)
    current = _with_changed(recorded, changed)

    for preset, k in (
        (Tolerance.strict(), n),
        (Tolerance.medium(), max(1, n - 1)),
        (Tolerance.loose(), max(1, math.ceil(n / 2))),
    ):
        assert match_fingerprint(recorded, current, preset).ok == (len(changed) <= n - k)


@given(names=factor_names, k=st.integers(min_value=1, max_value=20))
def test_a_device_with_fewer_than_k_factors_must_match_all_of_them(
    names: list[str], k: int
) -> None:
    recorded = _fingerprint(names)

    assert Tolerance.at_least(k).required_matches(len(names)) == min(k, len(names))
    assert match_fingerprint(recorded, recorded, Tolerance.at_least(k)).ok


def test_factors_gained_since_activation_are_ignored_and_lost_ones_count_as_changed() -> None:
    recorded = _fingerprint(["machine_id", "hostname", "cpu_model"])
    gained = Fingerprint(recorded.as_dict() | _fingerprint(["product_uuid"]).as_dict())
    lost = Fingerprint({k: v for k, v in recorded.items() if k != "hostname"})

    assert match_fingerprint(recorded, gained, Tolerance.strict()).ok
    assert match_fingerprint(recorded, lost, Tolerance.medium()).changed == ("hostname",)
    assert not match_fingerprint(recorded, lost, Tolerance.strict()).ok


def test_an_empty_recorded_fingerprint_never_matches() -> None:
    empty = Fingerprint({})

    for tolerance in (Tolerance.loose(), Tolerance.at_least(1)):
        assert not match_fingerprint(empty, _fingerprint(["hostname"]), tolerance).ok


@pytest.mark.parametrize("text", ["strict", "medium", "loose", "1-of-n", "3-of-n"])
def test_a_tolerance_reads_back_what_it_writes(text: str) -> None:
    assert str(Tolerance.parse(text)) == text


@pytest.mark.parametrize("text", ["", "Medium", "0-of-n", "3", "3-of-5", "k-of-n"])
def test_an_unknown_tolerance_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        Tolerance.parse(text)


def test_k_must_be_positive_and_only_for_k_of_n() -> None:
    with pytest.raises(ValueError):
        Tolerance.at_least(0)
    with pytest.raises(ValueError):
        Tolerance("medium", 2)


def test_a_mismatch_names_the_changed_factors_and_the_way_out() -> None:
    recorded = _fingerprint(["machine_id", "hostname", "cpu_model"])
    current = _with_changed(recorded, ["machine_id", "hostname"])

    with pytest.raises(FingerprintMismatchError) as caught:
        ensure_fingerprint_matches(recorded, current, Tolerance.medium())

    assert caught.value.code == "FINGERPRINT_MISMATCH"
    assert "1 of 3" in caught.value.message
    assert "hostname, machine_id" in caught.value.message
    assert "Return the license" in caught.value.message


# -- the same machine, changed; another machine --------------------------------------


def _collect(machine: Machine, root: Path) -> Fingerprint:
    return collect_fingerprint(SALT, SystemFactorSource(machine.build(root)))


def test_one_new_network_card_keeps_the_license_under_medium(tmp_path: Path) -> None:
    recorded = _collect(Machine(), tmp_path / "before")
    current = _collect(Machine(macs={"eth0": "3c:52:82:ff:ee:dd"}), tmp_path / "after")

    assert match_fingerprint(recorded, current, Tolerance.medium()).changed == ("mac_addresses",)
    assert match_fingerprint(recorded, current, Tolerance.medium()).ok
    assert not match_fingerprint(recorded, current, Tolerance.strict()).ok


def test_a_cloned_disk_on_other_hardware_fails_medium(tmp_path: Path) -> None:
    original = Machine()
    clone = Machine(
        product_uuid="4c4c4544-0000-1111-2222-333344445555",
        product_serial="ZZ99ZZ9",
        macs={"eth0": "a4:bb:6d:00:11:22"},
        disk_serial="WD-WX11A1234567",
    )
    recorded, current = _collect(original, tmp_path / "a"), _collect(clone, tmp_path / "b")

    result = match_fingerprint(recorded, current, Tolerance.medium())
    assert not result.ok
    assert set(result.changed) == {"product_uuid", "product_serial", "mac_addresses", "disk_serial"}
    # Half the factors survive a disk clone (machine id, filesystem, CPU, hostname).
    assert match_fingerprint(recorded, current, Tolerance.loose()).ok


def test_without_root_access_a_cloned_disk_still_fails_medium(tmp_path: Path) -> None:
    # The DMI ids are readable by root only.
    original = Machine(product_uuid=None, product_serial=None)
    clone = Machine(
        product_uuid=None,
        product_serial=None,
        macs={"eth0": "a4:bb:6d:00:11:22"},
        disk_serial="WD-WX11A1234567",
    )

    result = match_fingerprint(
        _collect(original, tmp_path / "a"), _collect(clone, tmp_path / "b"), Tolerance.medium()
    )

    assert (result.recorded, result.matched, result.required) == (6, 4, 5)
    assert not result.ok


# -- collection ----------------------------------------------------------------------


def test_the_system_source_reads_every_factor_of_a_linux_machine(tmp_path: Path) -> None:
    factors = SystemFactorSource(Machine().build(tmp_path))()

    assert factors == {
        "machine_id": "3d1219c7c4c5404aaa1f6d2a48adfda4",
        "product_uuid": "4c4c4544-0042-3510-8051-b4c04f4e3432",
        "product_serial": "B5QN4F2",
        "mac_addresses": "3c:52:82:1a:2b:3c",
        "root_fs_uuid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        "disk_serial": "S4EWNX0R123456",
        "cpu_model": "Intel(R) Core(TM) i7-10610U CPU @ 1.80GHz",
        "hostname": "build-07",
    }


def test_only_physical_globally_administered_macs_count(tmp_path: Path) -> None:
    macs = {"eth0": "3c:52:82:1a:2b:3c", "wlp2s0": "A4:BB:6D:00:11:22", "rnd0": "fa:16:3e:00:00:01"}

    factors = SystemFactorSource(Machine(macs=macs).build(tmp_path))()

    # lo and docker0 have no device; fa:… is locally administered (randomised).
    assert factors["mac_addresses"] == "3c:52:82:1a:2b:3c,a4:bb:6d:00:11:22"


def test_placeholder_firmware_values_are_not_factors(tmp_path: Path) -> None:
    machine = Machine(product_uuid="03000200-0400-0500-0006-000700080009")
    machine.product_serial = "To Be Filled By O.E.M."

    factors = SystemFactorSource(machine.build(tmp_path))()

    assert "product_uuid" not in factors
    assert "product_serial" not in factors


def test_the_dbus_machine_id_is_the_fallback(tmp_path: Path) -> None:
    (tmp_path / "var/lib/dbus").mkdir(parents=True)
    (tmp_path / "var/lib/dbus/machine-id").write_text("b08dfa6083e7567a1921a715000001fb\n")

    assert SystemFactorSource(tmp_path)() == {"machine_id": "b08dfa6083e7567a1921a715000001fb"}


def test_an_empty_system_yields_no_factors(tmp_path: Path) -> None:
    assert SystemFactorSource(tmp_path)() == {}


def test_any_callable_can_be_the_factor_source() -> None:
    fingerprint = collect_fingerprint(SALT, lambda: {"serial": "X1"})

    assert fingerprint == hash_factors({"serial": "X1"}, SALT)


# -- one rule for the device and for License Central ---------------------------------

tolerance_options = st.one_of(
    st.sampled_from(["strict", "medium", "loose"]).map(
        lambda p: {"preset": p, "k": None, "n": None}
    ),
    st.integers(min_value=1, max_value=16).map(lambda k: {"preset": None, "k": k, "n": 16}),
)


@given(names=factor_names, option=tolerance_options, data=st.data())
def test_the_device_and_the_server_agree_on_every_match(
    names: list[str], option: dict, data: st.DataObject
) -> None:
    changed = data.draw(st.lists(st.sampled_from(names), unique=True), label="changed")
    lost = data.draw(st.lists(st.sampled_from(names), unique=True), label="lost")
    recorded = _fingerprint(names)
    current = {k: v for k, v in _with_changed(recorded, changed).items() if k not in lost}

    tolerance = Tolerance.from_option(option)
    on_device = match_fingerprint(recorded, current, tolerance).ok

    assert on_device == shared_rule.fingerprint_matches(recorded, current, option)
    assert fingerprint_matches(recorded, current, tolerance) == on_device
    assert fingerprint_matches(recorded, Fingerprint(recorded), tolerance)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (None, Tolerance.medium()),
        ({}, Tolerance.medium()),
        ({"preset": "loose", "k": None, "n": None}, Tolerance.loose()),
        ({"preset": None, "k": 3, "n": 5}, Tolerance.at_least(3)),
    ],
)
def test_a_template_option_reads_as_a_tolerance(option: dict | None, expected: Tolerance) -> None:
    assert Tolerance.from_option(option) == expected


@pytest.mark.parametrize("option", [{"preset": "lenient"}, {"k": "3"}, {"k": 0}])
def test_an_unknown_template_option_is_refused(option: dict) -> None:
    with pytest.raises(ValueError):
        Tolerance.from_option(option)


def test_an_empty_recorded_fingerprint_matches_nothing_on_the_server_either() -> None:
    for option in ({"preset": "loose"}, {"k": 1, "n": 1}):
        assert not shared_rule.fingerprint_matches({}, {"hostname": "a" * 64}, option)
