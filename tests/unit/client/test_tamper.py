"""Tampering: every altered, forged, misaddressed, replayed or copied thing is refused.

Each attack is refused with the code that names it, and a refusal never changes the
licenses the device already holds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from licentia.client import (
    DeviceStore,
    FingerprintMismatchError,
    LicenseClient,
    SignatureInvalidError,
    StoreTamperedError,
    UpdateReplayedError,
    WrongDeviceError,
    hash_factors,
)
from licentia.formats.device import fingerprint_salt, unverified_claims
from licentia.formats.document_types import LICENSE_TYP, UPDATE_TYP
from licentia.formats.jws import sign_document

from .harness import CLONE, MACHINE, OTHER_MACHINE, Harness
from .vendor import BareVendor, Offer, Request, forge, hmac_forgery

FLIP_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _flip(text: str, position: int, mask: int = 0x01) -> str:
    return text[:position] + chr(ord(text[position]) ^ mask) + text[position + 1 :]


def _activated(harness: Harness, *offers: Offer) -> tuple[LicenseClient, Request]:
    client = harness.client()
    request_file = client.create_offline_request(harness.root / "first.request")
    request = harness.vendor.read_request(request_file)
    documents = [
        harness.vendor.sign_license(harness.vendor.license_claims(request, o))
        for o in offers or (Offer(),)
    ]
    update = harness.root / "first.update"
    update.write_text(harness.vendor.update(request, documents))
    client.import_update(update)
    return client, request


def _activate_once(harness: Harness) -> None:
    # Hypothesis runs the test body many times on one fixture: activate only the first.
    if not (harness.root / "device").exists():
        _activated(harness)


def _update_with(harness: Harness, request: Request, documents: list[str]) -> Path:
    path = harness.root / "attack.update"
    path.write_text(harness.vendor.update(request, documents))
    return path


# -- altered documents -------------------------------------------------------------------


def test_every_flipped_byte_of_a_license_inside_an_update_is_refused(harness: Harness) -> None:
    client, request = _activated(harness)
    genuine = harness.vendor.sign_license(harness.vendor.license_claims(request, Offer(version=2)))
    header, payload, _ = genuine.split(".")
    # Every byte of the header and the signature; every third of the (long) payload.
    positions = [
        *range(len(header) + 1),
        *range(len(header) + 1, len(header) + len(payload) + 1, 3),
        *range(len(header) + len(payload) + 1, len(genuine)),
    ]

    for position in positions:
        update = _update_with(harness, request, [_flip(genuine, position)])
        with pytest.raises(SignatureInvalidError) as caught:
            client.import_update(update)
        assert caught.value.code == "SIGNATURE_INVALID", position

    assert client.require("editor").version == 1  # what it held is untouched


def test_every_flipped_byte_of_an_update_is_refused(harness: Harness) -> None:
    client, request = _activated(harness)
    genuine = harness.vendor.update(
        request, [harness.vendor.sign_license(harness.vendor.license_claims(request, Offer()))]
    )
    path = harness.root / "flipped.update"

    for position in range(len(genuine)):
        path.write_text(_flip(genuine, position))
        with pytest.raises((SignatureInvalidError, WrongDeviceError, UpdateReplayedError)):
            client.import_update(path)

    assert client.status().seq == 1


@FLIP_SETTINGS
@given(data=st.data())
def test_a_stored_license_with_any_byte_changed_is_refused(
    harness: Harness, data: st.DataObject
) -> None:
    _activate_once(harness)
    store = DeviceStore.open(harness.root / "device", fingerprint=_fingerprint(MACHINE))
    genuine = store.read_license("L-1")
    # A part first, so the short header and signature get their share of the examples.
    part = data.draw(st.sampled_from([0, 1, 2]), label="part (header, payload, signature)")
    start = sum(len(segment) + 1 for segment in genuine.split(".")[:part])
    length = len(genuine.split(".")[part])
    position = start + data.draw(st.integers(0, 10**6), label="offset") % length
    mask = data.draw(st.integers(1, 127), label="mask")
    # Whoever can read the device key can re-seal the store: the signature still stops it.
    store.put_license("L-1", _flip(genuine, position, mask))

    try:
        with pytest.raises(SignatureInvalidError) as caught:
            harness.client().require("editor")
        assert caught.value.code == "SIGNATURE_INVALID"
    finally:
        store.put_license("L-1", genuine)


@FLIP_SETTINGS
@given(data=st.data())
def test_any_byte_changed_in_the_store_files_is_detected(
    harness: Harness, data: st.DataObject
) -> None:
    _activate_once(harness)
    name = data.draw(st.sampled_from(["state.json", "keys/device.json"]), label="file")
    path = harness.root / "device" / name
    genuine = path.read_bytes()
    position = data.draw(st.integers(0, 10**6), label="position") % len(genuine)
    mask = data.draw(st.integers(1, 255), label="mask")
    path.write_bytes(
        genuine[:position] + bytes([genuine[position] ^ mask]) + genuine[position + 1 :]
    )

    try:
        client = harness.client()
        with pytest.raises(StoreTamperedError) as caught:
            client.require("editor")
        assert caught.value.code == "STORE_TAMPERED"
        with pytest.raises(StoreTamperedError):
            client.status()
    finally:
        path.write_bytes(genuine)


# -- forged documents --------------------------------------------------------------------


def test_a_license_signed_by_another_vendors_key_is_refused(harness: Harness) -> None:
    client, request = _activated(harness)
    intruder = BareVendor(slug=harness.vendor.slug, kid=harness.vendor.kid)
    stranger = BareVendor(slug="other-vendor", kid="k-other")

    for forger in (intruder, stranger):
        document = forger.sign_license(forger.license_claims(request, Offer(version=2)))
        with pytest.raises(SignatureInvalidError):
            client.import_update(_update_with(harness, request, [document]))
        # Nor is a whole update the other vendor signed.
        path = harness.root / "forged.update"
        path.write_text(forger.update(request, [document]))
        with pytest.raises(SignatureInvalidError):
            client.import_update(path)


def test_a_document_of_the_vendors_key_but_another_issuer_is_refused(harness: Harness) -> None:
    client, request = _activated(harness)
    claims = harness.vendor.license_claims(request, Offer(version=2)) | {"iss": "someone-else"}

    with pytest.raises(SignatureInvalidError, match="someone-else"):
        client.import_update(_update_with(harness, request, [harness.vendor.sign_license(claims)]))


@pytest.mark.parametrize(
    "change",
    [
        {"ver": True},
        {"ver": "2"},
        {"lease_until": None},
        {"valid_until": "never"},
        {"features": ["edit", 3]},
        {"fingerprint": ["not", "a", "map"]},
        {"product": None},
    ],
    ids=repr,
)
def test_a_vendor_signed_license_of_the_wrong_shape_is_refused(
    harness: Harness, change: dict
) -> None:
    client, request = _activated(harness)
    claims = harness.vendor.license_claims(request, Offer(version=2)) | change
    document = harness.vendor.sign_license(claims)

    with pytest.raises(SignatureInvalidError, match="cannot read it"):
        client.import_update(_update_with(harness, request, [document]))
    assert [e.version for e in client.licenses()] == [1]


@pytest.mark.parametrize(
    "attack",
    [
        "alg none",
        "alg none with a signature",
        "HS256 with the raw public key",
        "HS256 with the JWK",
    ],
)
def test_a_document_with_another_algorithm_is_refused(harness: Harness, attack: str) -> None:
    client, request = _activated(harness)
    claims = harness.vendor.license_claims(request, Offer(version=2))
    kid, public = harness.vendor.kid, harness.vendor.key.public_key()
    raw_public = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    documents = {
        "alg none": forge({"alg": "none", "kid": kid, "typ": LICENSE_TYP}, claims, b""),
        "alg none with a signature": forge(
            {"alg": "none", "kid": kid, "typ": LICENSE_TYP}, claims, b"x" * 64
        ),
        "HS256 with the raw public key": hmac_forgery(claims, raw_public, kid),
        "HS256 with the JWK": hmac_forgery(
            claims, json.dumps(harness.vendor.jwks["keys"][0]).encode(), kid
        ),
    }

    with pytest.raises(SignatureInvalidError):
        client.import_update(_update_with(harness, request, [documents[attack]]))


def test_an_update_passed_off_as_a_license_and_back_is_refused(harness: Harness) -> None:
    client, request = _activated(harness)
    claims = harness.vendor.license_claims(request, Offer(version=2))
    as_update = sign_document(claims, harness.vendor.key, kid=harness.vendor.kid, typ=UPDATE_TYP)

    with pytest.raises(SignatureInvalidError, match="licentia-license"):
        client.import_update(_update_with(harness, request, [as_update]))
    license_file = harness.root / "license-as-update"
    license_file.write_text(harness.vendor.sign_license(claims))
    with pytest.raises(SignatureInvalidError, match="licentia-update"):
        client.import_update(license_file)


# -- misaddressed and replayed ---------------------------------------------------------


def test_an_update_made_for_another_device_is_refused(harness: Harness) -> None:
    client, request = _activated(harness)
    other = harness.client("other", machine=OTHER_MACHINE)

    elsewhere = harness.update_file(other, Offer(), name="for-other")

    with pytest.raises(WrongDeviceError) as caught:
        client.import_update(elsewhere)
    assert caught.value.code == "WRONG_DEVICE"
    readdressed = harness.root / "readdressed.update"
    document = unverified_claims(elsewhere.read_text().strip())["licenses"][0]
    readdressed.write_text(harness.vendor.update(request, [document]))
    with pytest.raises(WrongDeviceError):
        client.import_update(readdressed)


def test_an_update_that_is_not_newer_is_refused_as_a_replay(harness: Harness) -> None:
    client = harness.client()
    first = harness.update_file(client, Offer(version=1), name="first")
    client.import_update(first)
    second = harness.update_file(client, Offer(version=2), name="second")
    client.import_update(second)

    for old in (first, second):
        with pytest.raises(UpdateReplayedError) as caught:
            client.import_update(old)
        assert caught.value.code == "UPDATE_REPLAYED"

    assert client.require("editor").version == 2


def test_an_update_that_skips_a_lost_one_still_imports(harness: Harness) -> None:
    client = harness.client()
    harness.update_file(client, Offer(version=1), name="lost")  # never imported

    client.import_update(harness.update_file(client, Offer(version=2), name="next"))

    assert (client.status().seq, client.require("editor").version) == (2, 2)


# -- copied and restored stores ------------------------------------------------------------


def test_a_store_copied_to_other_hardware_is_refused(harness: Harness) -> None:
    _activated(harness)
    shutil.copytree(harness.root / "device", harness.root / "copy")

    elsewhere = harness.client("copy", machine=OTHER_MACHINE)
    cloned_disk = harness.client("copy", machine=CLONE)

    for client in (elsewhere, cloned_disk):
        with pytest.raises(FingerprintMismatchError) as caught:
            client.require("editor")
        assert caught.value.code == "FINGERPRINT_MISMATCH"


def test_an_old_copy_of_the_state_restored_is_refused(harness: Harness) -> None:
    client, _ = _activated(harness)
    backup = (harness.root / "device" / "state.json").read_bytes()
    harness.activate(client, Offer(version=2), name="second")

    (harness.root / "device" / "state.json").write_bytes(backup)

    with pytest.raises(StoreTamperedError) as caught:
        harness.client().require("editor")
    assert "generation" in caught.value.message


def test_a_state_from_another_device_is_refused(harness: Harness) -> None:
    _activated(harness)
    other = harness.client("other")
    harness.activate(other, Offer(), name="other")

    shutil.copy(harness.root / "other" / "state.json", harness.root / "device" / "state.json")

    with pytest.raises(StoreTamperedError):
        harness.client().require("editor")


def test_a_deleted_state_is_not_a_fresh_start(harness: Harness) -> None:
    _activated(harness)
    (harness.root / "device" / "state.json").unlink()

    with pytest.raises(StoreTamperedError):
        harness.client().require("editor")


def _fingerprint(machine: dict[str, str]):
    return hash_factors(machine, fingerprint_salt(BareVendor().slug))


def test_a_store_without_licenses_is_protected_all_the_same(harness: Harness) -> None:
    # The time mark and the sequences need protecting before the first license too.
    harness.client().status()
    state = harness.root / "device" / "state.json"
    state.write_text(state.read_text().replace('"sequences":{}', '"sequences":{"x":9}'))

    with pytest.raises(StoreTamperedError):
        harness.client().status()
