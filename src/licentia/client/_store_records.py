"""The records of the device store — the state and the sealed key file — and their MACs.

Both are canonical JSON envelopes ``{"mac": <hex HMAC-SHA256>, <field>: body}``: the
state record under ``state``; the device keys with the mirror of the state's generation
under ``store`` (see :mod:`licentia.client._store` for what they protect). A key file
of format 1 (stores of earlier versions) holds the bare keys, and the mirror is a file
of its own: both are still read, until the store's next write replaces them. Split
from the store so that the file formats sit in one place; nothing here touches the
file system.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

from licentia.client._exceptions import StoreTamperedError

__all__ = [
    "FORMAT",
    "KEYS_FORMAT",
    "KeyRecord",
    "StateRecord",
    "b64",
    "canonical",
    "check_keys",
    "decode_generation",
    "decode_keys",
    "decode_state",
    "derive_key",
    "encode_keys",
    "encode_state",
    "tampered",
    "unb64",
]

FORMAT = 1  # of the state record
KEYS_FORMAT = 2  # of the key file; format 1 kept the mirror in keys/generation

_ENVELOPE_PREFIX = b'{"mac":"'
# The one byte string encode_keys writes (canonical JSON): matched whole, it needs no
# JSON parser, and no edit can hide in it (the MAC covers the ``store`` object's bytes).
_SEALED_KEYS = re.compile(
    rb'\{"mac":"([0-9a-f]{64})","store":(\{"encryption_key":"([A-Za-z0-9_-]{43})",'
    rb'"format":%d,"generation":(0|[1-9][0-9]{0,17}),"signing_key":"([A-Za-z0-9_-]{43})"\})\}'
    % KEYS_FORMAT
)
# The one byte string a format-1 mirror file holds: canonical JSON.
_GENERATION_RECORD = re.compile(rb'\{"generation":(0|[1-9][0-9]{0,17}),"mac":"([0-9a-f]{64})"\}')


@dataclass(frozen=True)
class KeyRecord:
    """The device's raw private keys as the key file holds them. ``generation`` is the
    mirrored generation (None in a format-1 file, whose mirror is a file of its own);
    ``sealed`` the body and MAC of a format-2 file, for :func:`check_keys`."""

    signing_key: bytes
    encryption_key: bytes
    generation: int | None
    sealed: tuple[bytes, bytes] | None


@dataclass(frozen=True)
class StateRecord:
    generation: int
    fingerprint: dict[str, str]
    time_high_water: str | None
    sequences: dict[str, int]
    licenses: dict[str, str]
    last_sync: str | None = None
    # The device id, kept so that opening the store need not derive it from the key
    # (a scalar multiplication); absent in stores written by older versions.
    device_id: str | None = None


def tampered(detail: str) -> StoreTamperedError:
    return StoreTamperedError(
        f"The local license store was modified or restored from an older copy ({detail}). "
        "Connect to the internet so the license can sync, or contact your vendor."
    )


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("ascii")


# HMACs are made with hmac.new and the digest's name: hmac.digest looks the MAC
# algorithm up in OpenSSL 3 on every call, which cost twice as much on a cold start.


def mac_of(key: bytes, purpose: bytes, message: bytes) -> str:
    return hmac.new(key, purpose + b"\x00" + message, "sha256").hexdigest()


def derive_key(secret: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``secret`` without salt, 32 bytes long: one extract and
    one expand block. Spelled out as two HMACs because the store derives its MAC key on
    every open, and building a KDF object cost more than the two HMACs themselves."""
    pseudo_random_key = hmac.new(bytes(32), secret, "sha256").digest()
    return hmac.new(pseudo_random_key, info + b"\x01", "sha256").digest()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_state(state: StateRecord, key: bytes) -> bytes:
    body = {
        "format": FORMAT,
        "generation": state.generation,
        "fingerprint": state.fingerprint,
        "time_high_water": state.time_high_water,
        "sequences": state.sequences,
        "licenses": state.licenses,
        "last_sync": state.last_sync,
    }
    if state.device_id is not None:
        body["device_id"] = state.device_id
    return canonical({"mac": mac_of(key, b"state", canonical(body)), "state": body})


def decode_state(raw: bytes, key: bytes) -> StateRecord:
    body = _verified_body(raw, key, purpose=b"state", field="state")
    # The MAC vouches that this device wrote the body; these checks catch a store
    # written by another version of the SDK.
    try:
        if body["format"] != FORMAT:
            raise ValueError(f"format {body['format']!r} is not {FORMAT}")
        if type(body["generation"]) is not int:
            raise TypeError("the generation is not an integer")
        state = StateRecord(
            generation=body["generation"],
            fingerprint=dict(body["fingerprint"]),
            time_high_water=body["time_high_water"],
            sequences=dict(body["sequences"]),
            licenses=dict(body["licenses"]),
            last_sync=body.get("last_sync"),
            device_id=_optional_text(body.get("device_id")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise tampered(f"the state record is malformed: {exc}") from exc
    return state


def _optional_text(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("the device id is not a string")
    return value


def encode_keys(record: KeyRecord, key: bytes) -> bytes:
    """The sealed key file (format 2) of ``record``, its MAC made with ``key``."""
    body = {
        "encryption_key": b64(record.encryption_key),
        "format": KEYS_FORMAT,
        "generation": record.generation,
        "signing_key": b64(record.signing_key),
    }
    return canonical({"mac": mac_of(key, b"keys", canonical(body)), "store": body})


def decode_keys(raw: bytes) -> KeyRecord:
    """The key file's content, parsed but not yet checked: the MAC key comes from the
    keys inside, so :func:`check_keys` follows. Raises StoreTamperedError if damaged."""
    sealed = _SEALED_KEYS.fullmatch(raw)
    try:
        if sealed is not None:
            mac, body, encryption, generation, signing = sealed.groups()
            return KeyRecord(
                unb64(signing.decode()), unb64(encryption.decode()), int(generation), (body, mac)
            )
        if raw.startswith(_ENVELOPE_PREFIX):
            raise ValueError("not a key file of this version")
        document = json.loads(raw)  # format 1: the bare keys
        signing, encryption = document["signing_key"], document["encryption_key"]
        return KeyRecord(_key_bytes(signing), _key_bytes(encryption), None, None)
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise tampered("the device key file is damaged") from exc


def check_keys(record: KeyRecord, key: bytes) -> None:
    """Raises StoreTamperedError unless a sealed key file's MAC verifies under ``key``
    (the MAC key of the keys it holds, or of the store it is read into)."""
    if record.sealed is not None:
        body_bytes, mac = record.sealed
        _check_mac(key, b"keys", body_bytes, mac, "the device key file")


def _key_bytes(text: object) -> bytes:
    """32 raw key bytes from base64url; ValueError for anything else."""
    if not isinstance(text, str):
        raise TypeError("a key is not a string")
    raw = unb64(text)
    if len(raw) != 32:
        raise ValueError("a key does not have 32 bytes")
    return raw


def decode_generation(raw: bytes, key: bytes) -> int:
    """The generation in a format-1 mirror file, checked against ``key``."""
    # Byte-exact: the mirror is one canonical line, so matching it needs no JSON parser.
    match = _GENERATION_RECORD.fullmatch(raw)
    if match is None:
        raise tampered("the generation mirror is malformed")
    generation = int(match[1])
    expected = mac_of(key, b"generation", b"%d" % generation).encode()
    if not hmac.compare_digest(match[2], expected):
        raise tampered("the generation mirror does not verify")
    return generation


def _verified_body(raw: bytes, key: bytes, *, purpose: bytes, field: str) -> dict[str, Any]:
    """The MACed object under ``field`` of a canonical envelope ``{"mac", field}``.

    Canonical JSON sorts ``mac`` first, so the file is ``{"mac":"<hex>","<field>":``,
    the canonical body, ``}``: the MAC is checked over those exact body bytes before
    anything is parsed. Byte-exact, so no edit can hide in whitespace or key order, and
    the body is neither parsed twice nor serialized again to be checked.
    """
    infix = b'","' + field.encode("ascii") + b'":'
    start = len(_ENVELOPE_PREFIX) + 64 + len(infix)
    if not (raw.startswith(_ENVELOPE_PREFIX) and raw[start - len(infix) : start] == infix):
        raise tampered(f"{field} is not readable")
    mac, body_bytes = raw[len(_ENVELOPE_PREFIX) : start - len(infix)], raw[start:-1]
    if not raw.endswith(b"}"):
        raise tampered(f"{field} does not verify")
    _check_mac(key, purpose, body_bytes, mac, field)
    try:
        body = json.loads(body_bytes)
    except ValueError as exc:
        raise tampered(f"{field} is not readable") from exc
    if not isinstance(body, dict):
        raise tampered(f"{field} does not verify")
    return body


def _check_mac(key: bytes, purpose: bytes, body: bytes, mac: bytes, what: str) -> None:
    if not hmac.compare_digest(mac, mac_of(key, purpose, body).encode()):
        raise tampered(f"{what} does not verify")
