"""The device store: device keys, signed license documents and a tamper-evident state.

One directory per vendor (:func:`store_directory`)::

    <vendor>/
        state.json          state record + license documents, MACed
        keys/device.json    device key pairs (Ed25519 signs, X25519 receives), the
                            store's MAC key and the mirror of the state's generation
                            counter, MACed
        .lock               advisory lock serialising processes (POSIX flock)

The state record holds the fingerprint recorded when the store was created (and
re-recorded with each update License Central vouched for), the trusted-time
high-water mark, the per-container sequence numbers, the time of the last successful
sync and the license documents (opaque JWS strings keyed by license id). Keeping the
documents inside the state makes a sync one atomic write: the documents and the
sequence that vouches for them can never disagree after a crash.

Every file is written atomically (temporary file in the same directory, fsync,
``os.replace``, fsync of the directory); a new store is built in a staging directory
and renamed into place, so it appears whole or not at all. A write replaces
``state.json`` first and the key file with the mirror second; a crash between the two
leaves the state one generation ahead of the mirror, which :meth:`DeviceStore.open`
accepts.

The mirror shares the key file so that opening the store reads two files. Stores
written by earlier versions (key file format 1) keep the mirror in ``keys/generation``
and no MAC key; they are read as they are, and their next write moves the mirror into
the key file, adds the MAC key and deletes ``keys/generation``. (An earlier version
refuses the newer layout as tampered with: its key file no longer reads as format 1.)

Writers hold the exclusive lock. Readers first read without a lock (on POSIX, where
replacing a file that a reader holds open is allowed), the mirror before the state:
every state that verifies is one this device wrote, so a read that verifies may be
trusted whatever a writer did meanwhile, and one that does not — writes landed
between the two reads — is read again under the shared lock before the store counts
as tampered with.

The state and the key file are MACed with HMAC-SHA256 under a key derived (HKDF) from
the device's Ed25519 private key. The key file keeps the derived key beside the device
keys, so that opening the store need not derive it (two HMACs on every cold start):
whoever can read it could derive it from the private key next to it anyway. The
recorded fingerprint is inside the MACed state. What this detects, offline, as
:class:`StoreTamperedError` unless noted:

- any edit of ``state.json`` or ``keys/device.json`` (one flipped byte is enough);
- a ``state.json`` from another store or device (its MAC key differs);
- replacing ``keys/device.json`` (the state's MAC no longer verifies under its key);
- restoring an older ``state.json`` alone (its generation is below the mirror's);
- deleting ``state.json`` or the key file (a reset of the clock's high-water mark or
  of the sequences);
- the whole store copied to other hardware: the MAC still verifies, so this is
  :class:`FingerprintMismatchError` when the current fingerprint no longer matches the
  recorded one under the tolerance.

What it cannot detect offline: restoring a complete, consistent backup of every file
(state and key file together) — it is indistinguishable from the device as it was.
Nor can it stop someone who reads the MAC key (or the device private key it derives
from) in this directory: the store is tamper-*evident* against edits and file restores,
not a secure element. Both are caught at the next sync, when License Central compares
the device's sequence numbers with its own.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licentia.client import _files
from licentia.client._exceptions import NotActivatedError, StoreTamperedError
from licentia.client._files import FileVersion
from licentia.client._fingerprint import (
    Fingerprint,
    Tolerance,
    checked_fingerprint,
    ensure_fingerprint_matches,
    fingerprint_matches,
)
from licentia.client._store_records import (
    KeyRecord,
    StateRecord,
    b64,
    check_keys,
    decode_generation,
    decode_keys,
    decode_state,
    derive_key,
    encode_keys,
    encode_state,
    tampered,
    unb64,
)
from licentia.formats.digests import sha256

if TYPE_CHECKING:  # loaded when secret data is read, not on a license check
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

__all__ = ["DeviceStore", "StoreSnapshot", "check_vendor_name", "store_directory"]

_STATE_FILE = "state.json"
_KEYS_FILE = "keys/device.json"
_LEGACY_MIRROR_FILE = "keys/generation"  # the mirror of key file format 1
_LOCK_FILE = ".lock"
_VENDOR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Windows cannot replace a file that a reader holds open: there readers always lock.
_LOCK_FREE_READS = os.name == "posix"


def store_directory(vendor: str, root: Path | None = None) -> Path:
    """The store directory of ``vendor`` below ``root`` (default: the user's data directory).

    Raises ValueError if ``vendor`` is not a plain name (letters, digits, ``.``, ``_``,
    ``-``), so it can never point outside ``root``.
    """
    return (root or _default_root()) / check_vendor_name(vendor)


def check_vendor_name(vendor: str) -> str:
    """``vendor``, if it is a plain name that can name a store directory; else ValueError."""
    if not _VENDOR_NAME.fullmatch(vendor) or not vendor.strip("."):
        raise ValueError(f"{vendor!r} is not a valid vendor name for a store directory")
    return vendor


def _default_root() -> Path:
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "Licentia"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Licentia"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "licentia"


class StoreSnapshot(NamedTuple):
    """Everything the state record holds, read and verified at once; ``version`` is
    the :meth:`DeviceStore.version` of the state file it was read from. (A named tuple,
    like the records: every open of the store builds one.)"""

    fingerprint: Fingerprint
    time_high_water: datetime | None
    sequences: Mapping[str, int]
    licenses: Mapping[str, str]
    last_sync: datetime | None
    version: FileVersion | None = None


class _DeviceKeys:
    """The device's private keys, as the key file's base64url text. They are decoded
    and the key objects built on first use: building one costs a scalar
    multiplication, about half an Ed25519 verification, and opening the store to check
    licenses needs neither (only the MAC key, kept beside them)."""

    def __init__(self, signing_key: str, encryption_key: str, mac_key: bytes | None = None) -> None:
        self._signing_key = signing_key
        self._encryption_key = encryption_key
        # Derived from the signing key (never itself an HMAC key) when the store is made
        # and kept in the key file since format 2; a format-1 file makes us derive it.
        if mac_key is None:
            mac_key = derive_key(unb64(signing_key), b"licentia store v1")
        self.mac_key = mac_key

    @classmethod
    def generate(cls) -> _DeviceKeys:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        signing = Ed25519PrivateKey.generate().private_bytes_raw()
        encryption = X25519PrivateKey.generate().private_bytes_raw()
        return cls(b64(signing), b64(encryption))

    @functools.cached_property
    def signing(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(unb64(self._signing_key))

    @functools.cached_property
    def encryption(self) -> X25519PrivateKey:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        return X25519PrivateKey.from_private_bytes(unb64(self._encryption_key))

    @functools.cached_property
    def key_id(self) -> str:
        """The RFC 7638 JWK thumbprint of the Ed25519 public key."""
        raw = self.signing.public_key().public_bytes_raw()
        jwk = f'{{"crv":"Ed25519","kty":"OKP","x":"{b64(raw)}"}}'
        return b64(sha256(jwk.encode()))

    def record(self, generation: int) -> KeyRecord:
        return KeyRecord(self._signing_key, self._encryption_key, generation, self.mac_key)


class DeviceStore:
    """The local store of one vendor on one device; open it with :meth:`open`.

    Every read verifies the state from disk, so several processes may share a store.
    """

    def __init__(self, directory: Path | str, keys: _DeviceKeys) -> None:
        # Plain strings: every open of the store reads through them, and building
        # paths cost more than reading the small files.
        root = os.fspath(directory)
        self._root = root
        self._keys = keys
        self._mac_key = keys.mac_key
        self._state_path = f"{root}/{_STATE_FILE}"
        self._device_id: str | None = None

    @functools.cached_property
    def directory(self) -> Path:
        """The store's directory."""
        return Path(self._root)

    @classmethod
    def open(
        cls, directory: Path | str, *, fingerprint: Fingerprint, tolerance: Tolerance | None = None
    ) -> DeviceStore:
        """Open the store in ``directory``, creating it (with new device keys) on first use.

        ``fingerprint`` is this machine's current fingerprint; a new store records it.
        Raises StoreTamperedError if a file is missing, edited or restored from an older
        copy, and FingerprintMismatchError if the current fingerprint does not match the
        recorded one under ``tolerance`` (default: medium), e.g. the store was copied.
        """
        return cls.load(directory, fingerprint=fingerprint, tolerance=tolerance)[0]

    @classmethod
    def load(
        cls, directory: Path | str, *, fingerprint: Fingerprint, tolerance: Tolerance | None = None
    ) -> tuple[DeviceStore, StoreSnapshot]:
        """:meth:`open`, and the snapshot of the state it read to check the fingerprint
        (one verified read instead of two). Raises as :meth:`open` does."""
        root = os.fspath(directory)
        keys, mirror = _existing_keys(root, fingerprint)
        store = cls(root, keys)
        state, version = store._read_state(mirror)
        store._device_id = state.device_id
        snapshot = _snapshot_of(state, version)
        tolerance = tolerance or Tolerance.medium()
        if not fingerprint_matches(snapshot.fingerprint, fingerprint, tolerance):
            ensure_fingerprint_matches(snapshot.fingerprint, fingerprint, tolerance)
        return store, snapshot

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        """The device's Ed25519 key: signs requests, receipts and removal proofs."""
        return self._keys.signing

    @property
    def encryption_key(self) -> X25519PrivateKey:
        """The device's X25519 key: decrypts secret data encrypted to this device."""
        return self._keys.encryption

    def load_encryption_key(self) -> X25519PrivateKey:
        """:attr:`encryption_key` as a method, to hand on where it may never be needed."""
        return self._keys.encryption

    @property
    def device_key_id(self) -> str:
        """The RFC 7638 JWK thumbprint of the device's Ed25519 public key."""
        return self._device_id or self._keys.key_id

    def recorded_fingerprint(self) -> Fingerprint:
        """The fingerprint recorded when the store was created."""
        return Fingerprint(self._read_state()[0].fingerprint)

    def license_ids(self) -> list[str]:
        """The ids of the stored license documents, sorted."""
        return sorted(self._read_state()[0].licenses)

    def read_license(self, license_id: str) -> str:
        """The stored JWS of ``license_id``; raises NotActivatedError if there is none."""
        document = self._read_state()[0].licenses.get(license_id)
        if document is None:
            raise NotActivatedError(
                f"License {license_id} is not activated on this device. "
                "Activate it with your ticket in the activation wizard."
            )
        return document

    def sequence(self, container_id: str) -> int:
        """The last sequence number applied for ``container_id`` (0 if none yet)."""
        return self._read_state()[0].sequences.get(container_id, 0)

    def version(self) -> tuple[int, int, int] | None:
        """A cheap token that changes whenever the state is rewritten (one ``stat``, no
        verification): lets a process notice that another one changed the store.
        None if the state file is missing."""
        try:
            found = os.stat(self._state_path)
        except OSError:
            return None
        return (found.st_ino, found.st_size, found.st_mtime_ns)

    def snapshot(self) -> StoreSnapshot:
        """The whole state record in one verified read (raises StoreTamperedError)."""
        return _snapshot_of(*self._read_state())

    def apply_update(
        self,
        *,
        put: Mapping[str, str] | None = None,
        remove: Iterable[str] = (),
        replace_all: Mapping[str, str] | None = None,
        sequences: Mapping[str, int] | None = None,
        time_high_water: datetime | None = None,
        fingerprint: Fingerprint | None = None,
        last_sync: datetime | None = None,
    ) -> None:
        """Change documents, sequences and bookkeeping in one atomic write.

        ``replace_all`` (a container's full new content) replaces every stored
        document; otherwise ``put`` stores and ``remove`` drops documents. The other
        arguments, when given, advance sequences, set the time high-water mark (any
        value: the caller vouches for it), re-record the fingerprint and the time of the
        last sync. The caller verifies documents first: the store keeps them opaque.
        Raises ValueError if a sequence would go backwards or a time is naive, leaving
        the store unchanged.
        """
        put, sequences, removed = dict(put or {}), dict(sequences or {}), set(remove)
        mark, synced = _stamp(time_high_water), _stamp(last_sync)

        def change(state: StateRecord) -> StateRecord:
            for container_id, value in sequences.items():
                if value < state.sequences.get(container_id, 0):
                    raise ValueError(f"sequence of {container_id} would go back to {value}")
            if replace_all is not None:
                licenses = dict(replace_all)
            else:
                licenses = {k: v for k, v in state.licenses.items() if k not in removed} | put
            return state._replace(
                licenses=licenses,
                sequences=state.sequences | sequences,
                time_high_water=mark or state.time_high_water,
                fingerprint=fingerprint.as_dict() if fingerprint else state.fingerprint,
                last_sync=synced or state.last_sync,
            )

        self._update(change)

    def put_license(self, license_id: str, document: str) -> None:
        """Store (or replace) the JWS of ``license_id``."""
        self.apply_update(put={license_id: document})

    def remove_license(self, license_id: str) -> None:
        """Drop the JWS of ``license_id``; does nothing if it is not stored."""
        self.apply_update(remove=[license_id])

    def advance_sequence(self, container_id: str, value: int) -> None:
        """Record ``value`` as applied for ``container_id``; ValueError if it goes back."""
        self.apply_update(sequences={container_id: value})

    def read_time_high_water(self) -> datetime | None:
        """The latest trusted time recorded, or None before the first one."""
        return _parse_time(self._read_state()[0].time_high_water)

    def write_time_high_water(self, value: datetime) -> None:
        """Record ``value`` (timezone-aware) as the trusted-time high-water mark."""
        stamp = _stamp(value)
        self._update(lambda state: state._replace(time_high_water=stamp))

    def _read_state(self, mirror: int | None = None) -> tuple[StateRecord, FileVersion]:
        """The verified state and its file's version; ``mirror``, the generation in the
        key file just read, spares reading it again."""
        if _LOCK_FREE_READS:
            try:
                return self._load_verified(mirror)
            except StoreTamperedError:
                pass  # perhaps writes landed between the two reads: read under the lock
        with self._locked(exclusive=False):
            return self._load_verified()

    def _update(self, change: Callable[[StateRecord], StateRecord]) -> None:
        with self._locked(exclusive=True):
            current, _ = self._load_verified()
            new = change(current)._replace(
                generation=current.generation + 1,
                device_id=self._keys.key_id,
            )
            _files.remove_temporaries(self.directory)
            _write_state_files(self.directory, new, self._keys)

    def _load_verified(self, mirror: int | None = None) -> tuple[StateRecord, FileVersion]:
        # The mirror first: a write replaces it last, so it can only lag the state.
        if mirror is None:
            mirror = self._read_mirror()
        try:
            raw, version = _files.read_versioned(self._state_path)
        except FileNotFoundError as exc:
            raise tampered(f"{_STATE_FILE} is missing") from exc
        state = decode_state(raw, self._mac_key)
        # state == mirror + 1 is a write interrupted between its two files.
        if not mirror <= state.generation <= mirror + 1:
            raise tampered(
                f"state generation {state.generation} does not follow the mirrored {mirror}"
            )
        return state, version

    def _read_mirror(self) -> int:
        record = decode_keys(_read_small(f"{self._root}/{_KEYS_FILE}"))
        if record.generation is None:  # key file format 1
            mirror_file = _read_small(f"{self._root}/{_LEGACY_MIRROR_FILE}")
            return decode_generation(mirror_file, self._mac_key)
        check_keys(record, self._mac_key)
        return record.generation

    @contextlib.contextmanager
    def _locked(self, *, exclusive: bool) -> Iterator[None]:
        fd = os.open(f"{self._root}/{_LOCK_FILE}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _files.lock(fd, exclusive=exclusive)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _snapshot_of(state: StateRecord, version: FileVersion) -> StoreSnapshot:
    # The record was just decoded for this snapshot alone: its dicts need no copies.
    mark, synced = state.time_high_water, state.last_sync
    return StoreSnapshot(
        checked_fingerprint(state.fingerprint),
        None if mark is None else datetime.fromisoformat(mark),
        state.sequences,
        state.licenses,
        None if synced is None else datetime.fromisoformat(synced),
        version,
    )


def _stamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("times kept in the store must be timezone-aware")
    return value.astimezone(UTC).isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# -- creation ----------------------------------------------------------------------


def _existing_keys(root: str, fingerprint: Fingerprint) -> tuple[_DeviceKeys, int | None]:
    """The keys of the store in ``root`` and the generation mirrored with them (None in
    a key file of format 1), creating the store if there is none (the directory missing
    or empty). Tries the key file first: the store usually exists."""
    keys_path = f"{root}/{_KEYS_FILE}"
    try:
        return _load_keys(keys_path)
    except StoreTamperedError:
        directory = Path(root)
        if directory.exists() and any(directory.iterdir()):
            raise  # a store whose key file is missing or damaged
    _create_store(Path(root), fingerprint)
    return _load_keys(keys_path)


def _create_store(directory: Path, fingerprint: Fingerprint) -> None:
    """Build a complete store in a staging directory and rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # only a store being created needs it

    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        keys = _DeviceKeys.generate()
        (staging / "keys").mkdir(mode=0o700)
        first = StateRecord(1, fingerprint.as_dict(), None, {}, {}, device_id=keys.key_id)
        _write_state_files(staging, first, keys)
        (staging / _LOCK_FILE).touch(mode=0o600)  # readers lock only when they must
        _move_into_place(staging, directory)
    finally:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, directory: Path) -> None:
    try:
        if directory.exists():
            directory.rmdir()  # an empty directory someone prepared for us
        os.rename(staging, directory)
    except OSError:
        # Another process created the store first: use theirs, drop ours.
        if not (directory / _KEYS_FILE).exists():
            raise
    _files.fsync_directory(directory.parent)


# -- encodings ---------------------------------------------------------------------


def _load_keys(path: str) -> tuple[_DeviceKeys, int | None]:
    record = decode_keys(_read_small(path))
    keys = _DeviceKeys(record.signing_key, record.encryption_key, record.mac_key)
    check_keys(record, keys.mac_key)
    return keys, record.generation


# -- files -------------------------------------------------------------------------


def _write_state_files(directory: Path, state: StateRecord, keys: _DeviceKeys) -> None:
    # State first, mirror second: a crash in between leaves state == mirror + 1.
    _files.write_atomic(directory / _STATE_FILE, encode_state(state, keys.mac_key))
    _files.write_atomic(directory / _KEYS_FILE, encode_keys(keys.record(state.generation)))
    # A store of key file format 1 has now moved its mirror into the key file.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(directory / _LEGACY_MIRROR_FILE)


def _read_small(path: str) -> bytes:
    try:
        return _files.read_small(path)
    except FileNotFoundError as exc:
        raise tampered(f"{os.path.basename(path)} is missing") from exc
