"""The operator's master key: purpose-bound encryption at rest, and where it comes from.

Development creates a key file on first run (mode 0600) so one command starts
everything; anywhere else a missing or placeholder key stops the server before it
touches a secret.
"""

from __future__ import annotations

import base64
import secrets
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licentia.domain.errors import ConfigurationError
from licentia.server.keys.master import MasterKey, load_master_key, new_master_key_text
from licentia.server.settings import Settings

KEY = MasterKey(secrets.token_bytes(32))
purposes = st.text(min_size=1, max_size=40)


def settings(tmp_path: Path, environment: str = "development", **values: object) -> Settings:
    """Settings with only what the test names: the process environment is not read
    for these fields because they are given explicitly."""
    values.setdefault("master_key", None)
    values.setdefault("master_key_file", tmp_path / "var" / "master.key")
    return Settings(environment=environment, **values)  # type: ignore[arg-type]


# --- encryption -------------------------------------------------------------------------


@given(plaintext=st.binary(max_size=2048), purpose=purposes)
def test_what_is_encrypted_for_a_purpose_decrypts_to_the_same_bytes(plaintext, purpose):
    assert KEY.decrypt(KEY.encrypt(plaintext, purpose=purpose), purpose=purpose) == plaintext


@given(plaintext=st.binary(min_size=8, max_size=256), purpose=purposes)
def test_a_ciphertext_never_shows_its_plaintext_and_differs_each_time(plaintext, purpose):
    first, second = (KEY.encrypt(plaintext, purpose=purpose) for _ in range(2))
    assert first != second
    assert plaintext not in first


@given(plaintext=st.binary(max_size=256), sealed_for=purposes, opened_for=purposes)
def test_a_ciphertext_made_for_one_purpose_cannot_be_opened_for_another(
    plaintext, sealed_for, opened_for
):
    if sealed_for == opened_for:
        return
    blob = KEY.encrypt(plaintext, purpose=sealed_for)
    with pytest.raises(ConfigurationError):
        KEY.decrypt(blob, purpose=opened_for)


def test_another_master_key_cannot_decrypt_and_the_error_points_at_the_setting():
    blob = KEY.encrypt(b"vendor signing key", purpose="signing-key")
    with pytest.raises(ConfigurationError, match="LICENTIA_MASTER_KEY"):
        MasterKey(secrets.token_bytes(32)).decrypt(blob, purpose="signing-key")


def test_a_tampered_ciphertext_is_refused():
    blob = bytearray(KEY.encrypt(b"ticket code", purpose="ticket-code"))
    blob[-1] ^= 0x01
    with pytest.raises(ConfigurationError):
        KEY.decrypt(bytes(blob), purpose="ticket-code")


def test_keyed_hashes_are_stable_per_purpose_and_differ_across_purposes_and_keys():
    code = "ABCDE-FGHJK-MNPQR-STVWX-YZ012"
    assert KEY.keyed_hash(code, purpose="lookup") == KEY.keyed_hash(code, purpose="lookup")
    assert KEY.keyed_hash(code, purpose="lookup") != KEY.keyed_hash(code, purpose="other")
    other = MasterKey(secrets.token_bytes(32))
    assert KEY.keyed_hash(code, purpose="lookup") != other.keyed_hash(code, purpose="lookup")


def test_a_key_shorter_than_32_bytes_is_refused():
    with pytest.raises(ConfigurationError, match="32 bytes"):
        MasterKey(b"too short")


# --- where the key comes from -----------------------------------------------------------


def test_the_key_from_the_setting_opens_what_the_same_setting_sealed(tmp_path):
    text = new_master_key_text()
    blob = load_master_key(settings(tmp_path, master_key=text)).encrypt(b"x", purpose="p")
    assert load_master_key(settings(tmp_path, master_key=text)).decrypt(blob, purpose="p") == b"x"
    assert not (tmp_path / "var" / "master.key").exists()


def test_development_creates_a_key_file_readable_only_by_its_owner_and_reuses_it(tmp_path):
    config = settings(tmp_path)
    blob = load_master_key(config).encrypt(b"secret", purpose="p")
    path = config.master_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(config).decrypt(blob, purpose="p") == b"secret"


def test_production_refuses_to_start_without_a_master_key(tmp_path):
    config = settings(tmp_path, "production")
    with pytest.raises(ConfigurationError, match="LICENTIA_MASTER_KEY"):
        load_master_key(config)
    assert not config.master_key_file.exists()


@pytest.mark.parametrize("placeholder", ["change-me", "CHANGEME", "placeholder", " secret "])
def test_production_refuses_a_placeholder_master_key(tmp_path, placeholder):
    with pytest.raises(ConfigurationError, match="placeholder"):
        load_master_key(settings(tmp_path, "production", master_key=placeholder))


def test_production_accepts_a_key_file_the_operator_provided(tmp_path):
    path = tmp_path / "master.key"
    path.write_text(new_master_key_text() + "\n")
    path.chmod(0o600)
    key = load_master_key(settings(tmp_path, "production", master_key_file=path))
    assert key.decrypt(key.encrypt(b"ok", purpose="p"), purpose="p") == b"ok"


def test_a_master_key_that_is_not_32_bytes_of_base64_is_refused(tmp_path):
    with pytest.raises(ConfigurationError):
        load_master_key(settings(tmp_path, "production", master_key="c2hvcnQ"))


def _b64(secret: bytes) -> str:
    return base64.urlsafe_b64encode(secret).decode()


@pytest.mark.parametrize(
    "weak",
    [bytes(32), b"\xff" * 32, b"ab" * 16, bytes(range(8)) * 4, bytes(range(15)) * 3],
    ids=["all zero", "all ones", "two bytes repeated", "eight repeated", "fifteen repeated"],
)
def test_a_master_key_of_too_few_distinct_bytes_is_refused(tmp_path, weak):
    with pytest.raises(ConfigurationError, match="not random"):
        load_master_key(settings(tmp_path, "production", master_key=_b64(weak)))


@pytest.mark.parametrize(
    "passphrase",
    [
        "this is my very long and memorable master key passphrase",
        "Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3",
        "a-good-key-with-a-space " + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY=",
    ],
    ids=["words", "symbols", "a key with a space"],  # fixed: xdist workers collect alike
)
def test_a_passphrase_is_refused_rather_than_stripped_to_base64(tmp_path, passphrase):
    with pytest.raises(ConfigurationError, match="not a passphrase"):
        load_master_key(settings(tmp_path, "production", master_key=passphrase))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_key_file_other_users_may_read_is_refused(tmp_path, mode):
    path = tmp_path / "master.key"
    path.write_text(new_master_key_text() + "\n")
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_master_key(settings(tmp_path, "production", master_key_file=path))


def test_a_standard_base64_key_with_padding_is_accepted(tmp_path):
    text = new_master_key_text()
    assert text.endswith("=")
    key = load_master_key(settings(tmp_path, "production", master_key=text))
    assert key.decrypt(key.encrypt(b"ok", purpose="p"), purpose="p") == b"ok"


def test_without_a_declared_environment_no_key_file_is_created(tmp_path, monkeypatch):
    monkeypatch.delenv("LICENTIA_ENVIRONMENT", raising=False)
    path = tmp_path / "var" / "master.key"
    config = Settings(master_key=None, master_key_file=path)
    assert config.environment == "production"
    with pytest.raises(ConfigurationError, match="LICENTIA_ENVIRONMENT=development"):
        load_master_key(config)
    assert not path.exists()
