"""The device store: keys, license documents, atomic writes and tamper evidence."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from joserfc.jwk import OKPKey

from licentia.client import (
    DeviceStore,
    Fingerprint,
    FingerprintMismatchError,
    NotActivatedError,
    StoreTamperedError,
    Tolerance,
    hash_factors,
    store_directory,
)
from licentia.client import _files as file_writes

SALT = b"vendor-acme"
HERE = hash_factors(
    {
        "machine_id": "3d1219c7c4c5404aaa1f6d2a48adfda4",
        "mac_addresses": "3c:52:82:1a:2b:3c",
        "disk_serial": "S4EWNX0R123456",
        "product_uuid": "4c4c4544-0042-3510-8051-b4c04f4e3432",
        "hostname": "build-07",
    },
    SALT,
)
ELSEWHERE = hash_factors(
    {
        "machine_id": "3d1219c7c4c5404aaa1f6d2a48adfda4",
        "mac_addresses": "a4:bb:6d:00:11:22",
        "disk_serial": "WD-WX11A1234567",
        "product_uuid": "4c4c4544-0000-1111-2222-333344445555",
        "hostname": "build-07",
    },
    SALT,
)
LICENSE = "eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJMLTEifQ.c2lnbmF0dXJl"
NEWER_LICENSE = "eyJhbGciOiJFZDI1NTE5In0.eyJzdWIiOiJMLTEiLCJ2IjoyfQ.c2lnbmF0dXJl"


def _open(directory: Path, fingerprint: Fingerprint = HERE) -> DeviceStore:
    return DeviceStore.open(directory, fingerprint=fingerprint)


def _files(directory: Path) -> set[str]:
    return {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}


@pytest.fixture
def store(tmp_path: Path) -> DeviceStore:
    return _open(tmp_path / "acme")


# -- first use and everyday use ------------------------------------------------------


def test_first_use_creates_the_store_with_device_keys(tmp_path: Path) -> None:
    store = _open(tmp_path / "vendors" / "acme")

    assert _files(store.directory) == {"state.json", "keys/device.json", ".lock"}
    assert store.license_ids() == []
    assert store.recorded_fingerprint() == HERE
    assert len(store.device_key_id) == 43


def test_the_device_key_id_is_the_standard_jwk_thumbprint(store: DeviceStore) -> None:
    public = OKPKey.import_key(store.signing_key.public_key())

    assert store.device_key_id == public.thumbprint()


def test_the_device_keys_survive_a_restart(store: DeviceStore) -> None:
    again = _open(store.directory)

    assert again.device_key_id == store.device_key_id
    message = b"receipt"
    store.signing_key.public_key().verify(again.signing_key.sign(message), message)
    assert again.encryption_key.public_key() == store.encryption_key.public_key()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_the_store_is_readable_by_its_owner_only(store: DeviceStore) -> None:
    for name in ("state.json", "keys/device.json"):
        assert stat.S_IMODE((store.directory / name).stat().st_mode) == 0o600
    assert stat.S_IMODE((store.directory / "keys").stat().st_mode) == 0o700


def test_an_empty_directory_prepared_in_advance_becomes_the_store(tmp_path: Path) -> None:
    (tmp_path / "acme").mkdir()

    assert _open(tmp_path / "acme").license_ids() == []


def test_license_documents_are_kept_opaque_and_by_id(store: DeviceStore) -> None:
    store.put_license("L-1", LICENSE)
    store.put_license("L-2", NEWER_LICENSE)

    reopened = _open(store.directory)
    assert reopened.license_ids() == ["L-1", "L-2"]
    assert reopened.read_license("L-1") == LICENSE


def test_a_license_that_is_not_stored_is_not_activated(store: DeviceStore) -> None:
    with pytest.raises(NotActivatedError) as caught:
        store.read_license("L-404")

    assert caught.value.code == "NOT_ACTIVATED"
    assert "L-404" in caught.value.message


def test_a_removed_license_is_gone_and_removing_it_again_is_harmless(store: DeviceStore) -> None:
    store.put_license("L-1", LICENSE)

    store.remove_license("L-1")
    store.remove_license("L-1")

    assert store.license_ids() == []


def test_an_update_lands_documents_and_sequences_together(store: DeviceStore) -> None:
    store.put_license("L-old", LICENSE)

    store.apply_update(put={"L-1": NEWER_LICENSE}, remove=["L-old"], sequences={"C-1": 4})

    assert store.license_ids() == ["L-1"]
    assert store.sequence("C-1") == 4
    assert store.sequence("C-unknown") == 0


def test_a_sequence_never_goes_back_and_the_refused_update_changes_nothing(
    store: DeviceStore,
) -> None:
    store.advance_sequence("C-1", 7)

    with pytest.raises(ValueError, match="C-1"):
        store.apply_update(put={"L-1": LICENSE}, sequences={"C-1": 6})

    assert store.sequence("C-1") == 7
    assert store.license_ids() == []


def test_the_time_high_water_mark_is_kept_in_utc(store: DeviceStore) -> None:
    assert store.read_time_high_water() is None
    local = datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2)))

    store.write_time_high_water(local)

    assert store.read_time_high_water() == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone"):
        store.write_time_high_water(datetime(2030, 1, 2))


def test_processes_sharing_a_store_lose_no_update(store: DeviceStore) -> None:
    barrier = threading.Barrier(8)

    def activate(number: int) -> None:
        mine = _open(store.directory)
        barrier.wait()
        mine.put_license(f"L-{number}", LICENSE)

    threads = [threading.Thread(target=activate, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.license_ids() == [f"L-{n}" for n in range(8)]


def test_concurrent_first_use_ends_with_one_device_identity(tmp_path: Path) -> None:
    barrier = threading.Barrier(4)
    ids: list[str] = []

    def first_use() -> None:
        barrier.wait()
        ids.append(_open(tmp_path / "acme").device_key_id)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(ids) == 4
    assert len(set(ids)) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["acme"]


# -- atomic writes -------------------------------------------------------------------


def test_writes_leave_no_temporary_files(store: DeviceStore) -> None:
    for number in range(5):
        store.put_license(f"L-{number}", LICENSE)
    store.write_time_high_water(datetime.now(UTC))

    assert _files(store.directory) == {"state.json", "keys/device.json", ".lock"}


def test_a_crash_before_the_rename_leaves_the_previous_content(
    store: DeviceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_license("L-1", LICENSE)

    def crash(*_: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        store.put_license("L-1", NEWER_LICENSE)
    monkeypatch.undo()

    assert _open(store.directory).read_license("L-1") == LICENSE
    assert not any(name.endswith(".tmp") for name in _files(store.directory))


def test_a_crash_while_writing_the_data_leaves_the_previous_content(
    store: DeviceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put_license("L-1", LICENSE)

    def crash(_: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        store.put_license("L-1", NEWER_LICENSE)
    monkeypatch.undo()

    assert _open(store.directory).read_license("L-1") == LICENSE


def test_a_crash_between_state_and_mirror_keeps_the_new_state(
    store: DeviceStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = file_writes.write_atomic

    def write_state_then_crash(path: Path, data: bytes) -> None:
        if path.name == "device.json":  # the key file, with the mirror
            raise OSError("power cut")
        real_write(path, data)

    monkeypatch.setattr(file_writes, "write_atomic", write_state_then_crash)
    with pytest.raises(OSError, match="power cut"):
        store.put_license("L-1", LICENSE)
    monkeypatch.undo()

    reopened = _open(store.directory)
    assert reopened.read_license("L-1") == LICENSE
    reopened.put_license("L-2", LICENSE)
    assert _open(store.directory).license_ids() == ["L-1", "L-2"]


def test_temporary_files_of_a_crashed_writer_are_cleaned_up(store: DeviceStore) -> None:
    (store.directory / ".state.json.abc123.tmp").write_bytes(b"half a state")

    store.put_license("L-1", LICENSE)

    assert ".state.json.abc123.tmp" not in _files(store.directory)


# -- tamper evidence -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["state.json", "keys/device.json"])
def test_flipping_any_byte_is_detected(store: DeviceStore, name: str) -> None:
    store.put_license("L-1", LICENSE)
    store.write_time_high_water(datetime(2030, 1, 1, tzinfo=UTC))
    path = store.directory / name
    original = path.read_bytes()

    for position in range(len(original)):
        for mask in (0x01, 0x20, 0x80):
            flipped = bytearray(original)
            flipped[position] ^= mask
            path.write_bytes(bytes(flipped))
            with pytest.raises(StoreTamperedError) as caught:
                store.license_ids()
            assert caught.value.code == "STORE_TAMPERED"
    path.write_bytes(original)
    assert store.license_ids() == ["L-1"]


def test_an_edited_state_with_valid_json_is_detected(store: DeviceStore) -> None:
    store.advance_sequence("C-1", 9)
    path = store.directory / "state.json"

    path.write_text(path.read_text().replace('"C-1":9', '"C-1":1'))

    with pytest.raises(StoreTamperedError):
        store.sequence("C-1")


def test_restoring_an_older_state_file_is_detected(store: DeviceStore) -> None:
    store.put_license("L-1", LICENSE)
    backup = (store.directory / "state.json").read_bytes()
    store.remove_license("L-1")

    (store.directory / "state.json").write_bytes(backup)

    with pytest.raises(StoreTamperedError, match="generation"):
        _open(store.directory)


def test_restoring_an_older_state_after_the_clock_moved_on_is_detected(
    store: DeviceStore,
) -> None:
    store.write_time_high_water(datetime(2030, 1, 1, tzinfo=UTC))
    backup = (store.directory / "state.json").read_bytes()
    store.write_time_high_water(datetime(2030, 6, 1, tzinfo=UTC))

    (store.directory / "state.json").write_bytes(backup)

    with pytest.raises(StoreTamperedError):
        store.read_time_high_water()


@pytest.mark.parametrize("name", ["state.json", "keys/device.json"])
def test_deleting_the_state_or_its_mirror_is_detected(store: DeviceStore, name: str) -> None:
    (store.directory / name).unlink()

    with pytest.raises(StoreTamperedError, match="missing"):
        _open(store.directory)


def test_replacing_the_device_keys_is_detected(tmp_path: Path) -> None:
    mine, other = _open(tmp_path / "mine"), _open(tmp_path / "other")

    shutil.copy(other.directory / "keys/device.json", mine.directory / "keys/device.json")

    with pytest.raises(StoreTamperedError):
        _open(mine.directory)


def test_a_damaged_key_file_is_detected(store: DeviceStore) -> None:
    (store.directory / "keys/device.json").write_text('{"signing_key": "AAAA"}')

    with pytest.raises(StoreTamperedError, match="key file"):
        _open(store.directory)


def test_a_state_file_from_another_device_is_detected(tmp_path: Path) -> None:
    mine, other = _open(tmp_path / "mine"), _open(tmp_path / "other")
    shutil.copy(other.directory / "state.json", mine.directory / "state.json")

    with pytest.raises(StoreTamperedError):
        _open(mine.directory)


def test_a_store_copied_to_other_hardware_does_not_match(
    store: DeviceStore, tmp_path: Path
) -> None:
    store.put_license("L-1", LICENSE)
    copy = tmp_path / "elsewhere" / "acme"
    shutil.copytree(store.directory, copy)

    with pytest.raises(FingerprintMismatchError) as caught:
        _open(copy, fingerprint=ELSEWHERE)

    assert caught.value.code == "FINGERPRINT_MISMATCH"


def test_the_recorded_fingerprint_is_matched_with_the_given_tolerance(
    store: DeviceStore,
) -> None:
    one_new_card = Fingerprint(HERE.as_dict() | {"mac_addresses": ELSEWHERE["mac_addresses"]})

    assert _open(store.directory, fingerprint=one_new_card).license_ids() == []
    with pytest.raises(FingerprintMismatchError):
        DeviceStore.open(store.directory, fingerprint=one_new_card, tolerance=Tolerance.strict())


def test_a_complete_backup_restore_is_not_detectable_offline(
    store: DeviceStore, tmp_path: Path
) -> None:
    # Documented limit: License Central's sequence check catches this at the next sync.
    store.advance_sequence("C-1", 3)
    shutil.copytree(store.directory, tmp_path / "backup")
    store.advance_sequence("C-1", 4)

    shutil.rmtree(store.directory)
    shutil.copytree(tmp_path / "backup", store.directory)

    assert _open(store.directory).sequence("C-1") == 3


# -- stores written by earlier versions ----------------------------------------------

# Written by the previous release (key file format 1, the mirror in keys/generation):
# HERE's store holding LICENSE as L-1, C-1 at sequence 3 and the time mark 2030-01-01;
# the older state is the same store two writes earlier.
FORMAT_1 = Path(__file__).parent / "golden" / "store-format-1"
FORMAT_1_OLDER_STATE = FORMAT_1.with_name("store-format-1-older-state.json")


@pytest.fixture
def format_1_store(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FORMAT_1, tmp_path / "acme"))


def test_a_store_of_the_previous_format_opens_with_its_content(format_1_store: Path) -> None:
    store = _open(format_1_store)

    assert store.read_license("L-1") == LICENSE
    assert store.sequence("C-1") == 3
    assert store.read_time_high_water() == datetime(2030, 1, 1, tzinfo=UTC)
    assert store.device_key_id == "kPXPrVZUEfhuWoxwAYMa2_CG3DkE7MjyYRD5RReoj9E"


def test_its_next_write_moves_the_mirror_into_the_key_file(format_1_store: Path) -> None:
    before = (format_1_store / "state.json").read_bytes()
    store = _open(format_1_store)

    store.put_license("L-2", NEWER_LICENSE)

    assert _files(format_1_store) == {"state.json", "keys/device.json", ".lock"}
    reopened = _open(format_1_store)
    assert reopened.license_ids() == ["L-1", "L-2"]
    assert reopened.device_key_id == store.device_key_id
    (format_1_store / "state.json").write_bytes(before)
    with pytest.raises(StoreTamperedError, match="generation"):
        _open(format_1_store)


def test_restoring_an_older_state_of_the_previous_format_is_detected(
    format_1_store: Path,
) -> None:
    shutil.copy(FORMAT_1_OLDER_STATE, format_1_store / "state.json")

    with pytest.raises(StoreTamperedError, match="generation"):
        _open(format_1_store)


def test_flipping_any_byte_of_the_previous_formats_mirror_is_detected(
    format_1_store: Path,
) -> None:
    path = format_1_store / "keys/generation"
    original = path.read_bytes()

    for position in range(len(original)):
        for mask in (0x01, 0x20, 0x80):
            flipped = bytearray(original)
            flipped[position] ^= mask
            path.write_bytes(bytes(flipped))
            with pytest.raises(StoreTamperedError):
                _open(format_1_store)


# -- where stores live ---------------------------------------------------------------


def test_each_vendor_has_its_own_directory(tmp_path: Path) -> None:
    assert store_directory("acme", tmp_path) == tmp_path / "acme"
    assert store_directory("globex-2.eu", tmp_path) == tmp_path / "globex-2.eu"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG is the Linux convention")
def test_the_default_root_follows_the_xdg_data_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))

    assert store_directory("acme") == tmp_path / "licentia" / "acme"


@pytest.mark.parametrize("vendor", ["", ".", "..", "../acme", "acme/evil", "/etc", ".hidden"])
def test_a_vendor_name_cannot_escape_the_root(tmp_path: Path, vendor: str) -> None:
    with pytest.raises(ValueError, match="vendor"):
        store_directory(vendor, tmp_path)
