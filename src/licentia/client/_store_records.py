"""The state record and generation mirror of the device store, and their MACs.

Both files are canonical JSON envelopes ``{"mac": <hex HMAC-SHA256>, <field>: body}``
(see :mod:`licentia.client._store` for what they protect). Split from the store so that
the file formats sit in one place; nothing here touches the file system.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from licentia.client._exceptions import StoreTamperedError

__all__ = [
    "FORMAT",
    "StateRecord",
    "b64",
    "canonical",
    "decode_generation",
    "decode_state",
    "encode_generation",
    "encode_state",
    "tampered",
    "unb64",
]

FORMAT = 1


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


def mac_of(key: bytes, purpose: bytes, message: bytes) -> str:
    return hmac.new(key, purpose + b"\x00" + message, hashlib.sha256).hexdigest()


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


def encode_generation(generation: int, key: bytes) -> bytes:
    return canonical(
        {"generation": generation, "mac": mac_of(key, b"generation", b"%d" % generation)}
    )


def decode_generation(raw: bytes, key: bytes) -> int:
    try:
        document = json.loads(raw)
        generation, mac = document["generation"], str(document["mac"]).encode()
    except (ValueError, TypeError, KeyError) as exc:
        raise tampered("the generation mirror is not readable") from exc
    if type(generation) is not int or canonical(document) != raw:
        raise tampered("the generation mirror is malformed")
    expected = mac_of(key, b"generation", b"%d" % generation).encode()
    if not hmac.compare_digest(mac, expected):
        raise tampered("the generation mirror does not verify")
    return generation


def _verified_body(raw: bytes, key: bytes, *, purpose: bytes, field: str) -> dict[str, Any]:
    """The MACed object under ``field`` of a canonical envelope ``{"mac", field}``.

    Canonical JSON sorts ``mac`` first, so the file is ``{"mac":"<hex>","<field>":``,
    the canonical body, ``}``: the MAC is checked over those exact body bytes before
    anything is parsed. Byte-exact, so no edit can hide in whitespace or key order, and
    the body is neither parsed twice nor serialized again to be checked.
    """
    prefix = b'{"mac":"'
    infix = b'","' + field.encode("ascii") + b'":'
    start = len(prefix) + 64 + len(infix)
    if not (raw.startswith(prefix) and raw[start - len(infix) : start] == infix):
        raise tampered(f"{field} is not readable")
    mac, body_bytes = raw[len(prefix) : start - len(infix)], raw[start:-1]
    expected = mac_of(key, purpose, body_bytes).encode()
    if not raw.endswith(b"}") or not hmac.compare_digest(mac, expected):
        raise tampered(f"{field} does not verify")
    try:
        body = json.loads(body_bytes)
    except ValueError as exc:
        raise tampered(f"{field} is not readable") from exc
    if not isinstance(body, dict):
        raise tampered(f"{field} does not verify")
    return body
