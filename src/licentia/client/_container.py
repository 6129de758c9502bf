"""The device container as the client holds it in memory: one verified state at a time.

A :class:`ContainerState` is immutable; the client swaps it whole after every load or
update, so a concurrent license check sees the old state or the new one, never a mix.
:class:`ContainerReader` builds states for one device: from the store (verifying every
document) or from an update that was verified already.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from licentia.client._documents import (
    VerifiedUpdate,
    decrypt_secret,
    verify_license,
    verify_update,
)
from licentia.client._entitlements import Entitlement, EntitlementIndex, grant_from_claims
from licentia.client._exceptions import (
    DeviceTrustError,
    LicentiaClientError,
    SignatureInvalidError,
)
from licentia.client._frozen import FrozenValue
from licentia.client._store import StoreSnapshot
from licentia.client._virtualization import Virtualization
from licentia.formats.device import state_hash

if TYPE_CHECKING:  # the key is loaded only when secret data is read
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

__all__ = ["ClientStatus", "ContainerReader", "ContainerState", "SyncResult", "sync_result"]

# A container without licenses still syncs now and then, to learn of new ones.
IDLE_SYNC_INTERVAL = timedelta(days=1)
_issued_at = attrgetter("issued_at")


class ContainerState(FrozenValue):
    """One verified container state. ``problem``, when set, refuses every check."""

    __slots__ = _fields = ("seq", "documents", "claims", "index", "last_sync", "problem")
    seq: int
    documents: Mapping[str, str]
    claims: Mapping[str, Mapping[str, Any]]
    index: EntitlementIndex
    last_sync: datetime | None
    problem: LicentiaClientError | None

    def __init__(
        self,
        seq: int,
        documents: Mapping[str, str],
        claims: Mapping[str, Mapping[str, Any]],
        index: EntitlementIndex,
        last_sync: datetime | None,
        problem: LicentiaClientError | None = None,
    ) -> None:
        self._assign(seq, documents, claims, index, last_sync, problem)

    @classmethod
    def refusing(cls, error: LicentiaClientError) -> ContainerState:
        """A state that allows nothing and says why."""
        return cls(0, {}, {}, EntitlementIndex([]), None, error)

    @property
    def state(self) -> str:
        """The hash of the content (license ids and versions) that the device protocol
        exchanges: computed when an exchange needs it (once or twice), not on every load."""
        return state_hash((license_id, c["ver"]) for license_id, c in self.claims.items())

    def synced_at(self, moment: datetime) -> ContainerState:
        return ContainerState(
            self.seq, self.documents, self.claims, self.index, moment, self.problem
        )

    def sync_due_at(self, now: datetime) -> datetime:
        """When this container should sync: its earliest ``refresh_after``; an empty
        one a day after its last sync."""
        due = min((g.entitlement.refresh_after for g in self.index.grants), default=None)
        return due if due is not None else (self.last_sync or now) + IDLE_SYNC_INTERVAL

    def time_floor(self, mark: datetime | None) -> datetime | None:
        """``mark`` raised to the newest document's signing time: trusted time can never
        be older than what License Central already vouched for."""
        issued: datetime | None = max(map(_issued_at, self.index.entitlements), default=None)
        if issued is None or (mark is not None and mark >= issued):
            return mark
        return issued


class ContainerReader:
    """Builds the container states of one device of one vendor.

    ``encryption_key`` is called only when the application reads secret data: building
    the key object costs a scalar multiplication that checking licenses does not need.
    """

    def __init__(
        self,
        vendor: str,
        device_id: str,
        keys: Mapping[str, Ed25519PublicKey],
        fingerprint: Mapping[str, str],
        virtualization: Virtualization,
        encryption_key: Callable[[], X25519PrivateKey],
    ) -> None:
        self.vendor = vendor
        self.device_id = device_id
        self.keys = keys
        self.fingerprint = fingerprint
        self.virtualization = virtualization
        self.encryption_key = encryption_key

    def from_snapshot(self, snapshot: StoreSnapshot) -> ContainerState:
        """Verify every stored document. A document that does not verify makes a state
        that refuses everything (a sync replaces it) rather than an exception."""
        seq = snapshot.sequences.get(self.device_id, 0)
        approved: dict[str, Ed25519PublicKey] = {}
        claims: dict[str, Mapping[str, Any]] = {}
        try:
            for license_id, document in snapshot.licenses.items():
                claims[license_id] = verified = verify_license(
                    document,
                    self.keys,
                    vendor=self.vendor,
                    device_id=self.device_id,
                    approved_headers=approved,
                )
                if verified["sub"] != license_id:
                    raise SignatureInvalidError(
                        f"The stored license {license_id} holds the document of "
                        f"{verified['sub']}. Sync the licenses or contact your vendor."
                    )
        except DeviceTrustError as problem:
            empty = EntitlementIndex([])
            return ContainerState(seq, snapshot.licenses, {}, empty, None, problem)
        # The snapshot was read for this state alone: its documents need no copy.
        return self._state(seq, snapshot.licenses, claims, snapshot.last_sync)

    def verify_update(self, token: str, held_seq: int) -> VerifiedUpdate:
        """See :func:`licentia.client._documents.verify_update`."""
        return verify_update(
            token, self.keys, vendor=self.vendor, device_id=self.device_id, held_seq=held_seq
        )

    def from_update(self, update: VerifiedUpdate) -> ContainerState:
        return self.from_claims(update.seq, update.documents, update.claims, update.issued_at)

    def without(self, state: ContainerState, license_id: str) -> ContainerState:
        """``state`` after the device gave up ``license_id``."""
        documents = {k: v for k, v in state.documents.items() if k != license_id}
        claims = {k: v for k, v in state.claims.items() if k != license_id}
        return self._state(state.seq, documents, claims, state.last_sync)

    def from_claims(
        self,
        seq: int,
        documents: Mapping[str, str],
        claims: Mapping[str, Mapping[str, Any]],
        last_sync: datetime | None,
    ) -> ContainerState:
        return self._state(seq, dict(documents), dict(claims), last_sync)

    def _state(
        self,
        seq: int,
        documents: Mapping[str, str],
        claims: Mapping[str, Mapping[str, Any]],
        last_sync: datetime | None,
    ) -> ContainerState:
        """The state of ``documents`` and their verified ``claims``, kept as they are."""
        fingerprint, virtualization = self.fingerprint, self.virtualization
        grants = []
        for license_id, item in claims.items():
            opener = self._secret_opener(license_id) if "secret_data" in item else None
            grants.append(grant_from_claims(item, fingerprint, virtualization, opener))
        return ContainerState(seq, documents, claims, EntitlementIndex(grants), last_sync)

    def _secret_opener(self, license_id: str) -> Callable[[str], str]:
        key = self.encryption_key
        return lambda token: decrypt_secret(token, key(), license_id=license_id)


class SyncResult(FrozenValue):
    """What a sync changed. ``changed`` is False when License Central answered 304;
    ``device_status`` is the status the update gave (``blacklisted`` empties it)."""

    __slots__ = _fields = (
        "changed",
        "seq",
        "added",
        "removed",
        "updated",
        "licenses",
        "device_status",
    )
    changed: bool
    seq: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    updated: tuple[str, ...]
    licenses: tuple[Entitlement, ...]
    device_status: str | None

    def __init__(
        self,
        changed: bool,
        seq: int,
        added: tuple[str, ...],
        removed: tuple[str, ...],
        updated: tuple[str, ...],
        licenses: tuple[Entitlement, ...],
        device_status: str | None = None,
    ) -> None:
        self._assign(changed, seq, added, removed, updated, licenses, device_status)


def sync_result(
    before: ContainerState, after: ContainerState, *, changed: bool, status: str | None = None
) -> SyncResult:
    old, new = before.claims, after.claims
    return SyncResult(
        changed=changed,
        seq=after.seq,
        added=tuple(sorted(set(new) - set(old))),
        removed=tuple(sorted(set(old) - set(new))),
        updated=tuple(sorted(k for k in set(old) & set(new) if old[k]["ver"] != new[k]["ver"])),
        licenses=after.index.entitlements,
        device_status=status,
    )


class ClientStatus(FrozenValue):
    """The device's licensing state, for an "about" page or the activation wizard.

    ``problem`` is what makes every check fail right now (an untrusted document, a
    clock set back), or None. ``refresh_due`` says a sync should run (the earliest
    ``refresh_after`` passed, or a problem a sync can clear). ``push_connected``: the
    auto-update listens to License Central's push stream now (else it polls).
    """

    __slots__ = _fields = (
        "vendor",
        "device_id",
        "seq",
        "licenses",
        "next_refresh",
        "refresh_due",
        "last_sync",
        "problem",
        "virtualization",
        "auto_update_running",
        "auto_update_error",
        "push_connected",
    )
    vendor: str
    device_id: str
    seq: int
    licenses: tuple[Entitlement, ...]
    next_refresh: datetime | None
    refresh_due: bool
    last_sync: datetime | None
    problem: LicentiaClientError | None
    virtualization: Virtualization
    auto_update_running: bool
    auto_update_error: LicentiaClientError | None
    push_connected: bool

    def __init__(
        self,
        vendor: str,
        device_id: str,
        seq: int,
        licenses: tuple[Entitlement, ...],
        next_refresh: datetime | None,
        refresh_due: bool,
        last_sync: datetime | None,
        problem: LicentiaClientError | None,
        virtualization: Virtualization,
        auto_update_running: bool,
        auto_update_error: LicentiaClientError | None,
        push_connected: bool = False,
    ) -> None:
        self._assign(
            vendor,
            device_id,
            seq,
            licenses,
            next_refresh,
            refresh_due,
            last_sync,
            problem,
            virtualization,
            auto_update_running,
            auto_update_error,
            push_connected,
        )
