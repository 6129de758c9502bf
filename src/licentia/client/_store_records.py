"""The records of the device store — the state and the sealed key file — and their MACs.

Both are canonical JSON envelopes ``{"mac": <hex HMAC-SHA256>, <field>: body}``: the
state record under ``state``; the device keys, the store's MAC key and the mirror of
the state's generation under ``store`` (see :mod:`licentia.client._store` for what
they protect). A key file of format 1 (stores of earlier versions) holds the bare
keys, the MAC key is derived from them and the mirror is a file of its own: all are
still read, until the store's next write replaces them. Split from the store so that
the file formats sit in one place; nothing here touches the file system.
"""

from __future__ import annotations

import binascii
import json
import re
from typing import Any, NamedTuple

from licentia.client._exceptions import StoreTamperedError
from licentia.client._mac import hmac_sha256, hmac_sha256_matches
from licentia.formats import base64url

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
_MAC_END = len(_ENVELOPE_PREFIX) + 64
_STATE_INFIX = b'","state":'
_STATE_START = _MAC_END + len(_STATE_INFIX)
# The one byte string encode_keys writes (canonical JSON): matched whole, it needs no
# JSON parser, and no edit can hide in it (the MAC covers the ``store`` object's bytes).
_SEALED_KEYS = re.compile(
    rb'\{"mac":"([0-9a-f]{64})","store":(\{"encryption_key":"([A-Za-z0-9_-]{43})",'
    rb'"format":%d,"generation":(0|[1-9][0-9]{0,17}),"mac_key":"([A-Za-z0-9_-]{43})",'
    rb'"signing_key":"([A-Za-z0-9_-]{43})"\})\}' % KEYS_FORMAT
)
# The one byte string a format-1 mirror file holds: canonical JSON.
_GENERATION_RECORD = re.compile(rb'\{"generation":(0|[1-9][0-9]{0,17}),"mac":"([0-9a-f]{64})"\}')
_FROM_BASE64URL = bytes.maketrans(b"-_", b"+/")
_JSON = json.JSONDecoder()

# The records are named tuples rather than frozen dataclasses: every open of the store
# builds them, and a frozen dataclass sets each field through object.__setattr__.


class KeyRecord(NamedTuple):
    """The device's private keys as the key file holds them: the base64url text of 32
    bytes each. ``generation`` is the mirrored generation and ``mac_key`` the store's
    MAC key (both None in a format-1 file, whose mirror is a file of its own and whose
    MAC key is derived on every open); ``sealed`` the body and MAC of a format-2 file,
    for :func:`check_keys`."""

    signing_key: str
    encryption_key: str
    generation: int | None
    mac_key: bytes | None
    sealed: tuple[bytes, bytes] | None = None


class StateRecord(NamedTuple):
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


def mac_of(key: bytes, purpose: bytes, message: bytes) -> str:
    return hmac_sha256(key, purpose + b"\x00" + message).hex()


def derive_key(secret: bytes, info: bytes) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``secret`` without salt, 32 bytes long: one extract and
    one expand block. Spelled out as two HMACs because a store of key file format 1
    derives its MAC key on every open, and building a KDF object cost more than the two
    HMACs themselves."""
    pseudo_random_key = hmac_sha256(bytes(32), secret)
    return hmac_sha256(pseudo_random_key, info + b"\x01")


b64, unb64 = base64url.encode, base64url.decode


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
    """The state record of a state file, its MAC checked with ``key``.

    Canonical JSON sorts ``mac`` first, so the file is ``{"mac":"<hex>","state":``,
    the canonical body, ``}``: the MAC is checked over those exact body bytes before
    anything is parsed. Byte-exact, so no edit can hide in whitespace or key order, and
    the body is neither parsed twice nor serialized again to be checked.
    """
    if not (raw.startswith(_ENVELOPE_PREFIX) and raw[_MAC_END:_STATE_START] == _STATE_INFIX):
        raise tampered("state is not readable")
    if not raw.endswith(b"}"):
        raise tampered("state does not verify")
    body_bytes = raw[_STATE_START:-1]
    _check_mac(key, b"state", body_bytes, raw[len(_ENVELOPE_PREFIX) : _MAC_END], "state")
    try:
        # Canonical JSON, as the MAC vouches: nothing around the value, so the decoder
        # is called directly (json.loads first guesses the encoding and strips spaces).
        text = body_bytes.decode("utf-8")
        body, end = _JSON.raw_decode(text)
        if end != len(text):
            raise ValueError("extra data after the body")
    except ValueError as exc:
        raise tampered("state is not readable") from exc
    if not isinstance(body, dict):
        raise tampered("state does not verify")
    # The MAC vouches that this device wrote the body; these checks catch a store
    # written by another version of the SDK. The body was parsed for this record
    # alone: its objects are kept, not copied.
    try:
        generation, fingerprint = body["generation"], body["fingerprint"]
        sequences, licenses = body["sequences"], body["licenses"]
        if body["format"] != FORMAT:
            raise ValueError(f"format {body['format']!r} is not {FORMAT}")
        if type(generation) is not int:
            raise TypeError("the generation is not an integer")
        if not (type(fingerprint) is type(sequences) is type(licenses) is dict):
            raise TypeError("the fingerprint, sequences or licenses are not objects")
        device_id = body.get("device_id")
        if not (device_id is None or type(device_id) is str):
            raise TypeError("the device id is not a string")
        return StateRecord(
            generation,
            fingerprint,
            body["time_high_water"],
            sequences,
            licenses,
            body.get("last_sync"),
            device_id,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise tampered(f"the state record is malformed: {exc}") from exc


def encode_keys(record: KeyRecord) -> bytes:
    """The sealed key file (format 2) of ``record``, MACed with its ``mac_key``."""
    assert record.mac_key is not None, "a sealed key file keeps the store's MAC key"
    body = {
        "encryption_key": record.encryption_key,
        "format": KEYS_FORMAT,
        "generation": record.generation,
        "mac_key": b64(record.mac_key),
        "signing_key": record.signing_key,
    }
    return canonical({"mac": mac_of(record.mac_key, b"keys", canonical(body)), "store": body})


def decode_keys(raw: bytes) -> KeyRecord:
    """The key file's content, parsed but not yet checked: the MAC key comes from the
    file itself, so :func:`check_keys` follows. Raises StoreTamperedError if damaged."""
    sealed = _SEALED_KEYS.fullmatch(raw)
    try:
        if sealed is not None:
            mac, body, encryption, generation, mac_key, signing = sealed.groups()
            return KeyRecord(
                signing.decode("ascii"),
                encryption.decode("ascii"),
                int(generation),
                # 43 characters of the base64url alphabet, as matched: 32 bytes.
                binascii.a2b_base64(mac_key.translate(_FROM_BASE64URL) + b"="),
                (body, mac),
            )
        if raw.startswith(_ENVELOPE_PREFIX):
            raise ValueError("not a key file of this version")
        document = json.loads(raw)  # format 1: the bare keys
        signing, encryption = document["signing_key"], document["encryption_key"]
        return KeyRecord(_key_text(signing), _key_text(encryption), None, None)
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise tampered("the device key file is damaged") from exc


def check_keys(record: KeyRecord, key: bytes) -> None:
    """Raises StoreTamperedError unless a sealed key file's MAC verifies under ``key``
    (the MAC key of the keys it holds, or of the store it is read into)."""
    if record.sealed is not None:
        body_bytes, mac = record.sealed
        _check_mac(key, b"keys", body_bytes, mac, "the device key file")


def _key_text(text: object) -> str:
    """The canonical base64url text of 32 key bytes (as a sealed key file keeps them);
    ValueError for anything else."""
    if not isinstance(text, str):
        raise TypeError("a key is not a string")
    raw = unb64(text)
    if len(raw) != 32:
        raise ValueError("a key does not have 32 bytes")
    return b64(raw)


def decode_generation(raw: bytes, key: bytes) -> int:
    """The generation in a format-1 mirror file, checked against ``key``."""
    # Byte-exact: the mirror is one canonical line, so matching it needs no JSON parser.
    match = _GENERATION_RECORD.fullmatch(raw)
    if match is None:
        raise tampered("the generation mirror is malformed")
    generation = int(match[1])
    if not hmac_sha256_matches(key, b"generation\x00%d" % generation, match[2]):
        raise tampered("the generation mirror does not verify")
    return generation


def _check_mac(key: bytes, purpose: bytes, body: bytes, mac: bytes, what: str) -> None:
    if not hmac_sha256_matches(key, purpose + b"\x00" + body, mac):
        raise tampered(f"{what} does not verify")
