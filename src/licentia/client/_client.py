"""``LicenseClient``: activate, check, sync and return device licenses, offline first.

The client verifies every document once — when it loads the store and after each
update — and answers :meth:`LicenseClient.require` from memory: a dict lookup, the
trusted time (whose high-water mark is kept in memory, see :class:`CachedMark`) and a
few comparisons. Only :meth:`~LicenseClient.activate`, :meth:`~LicenseClient.sync`
and :meth:`~LicenseClient.return_license` talk to License Central; the file-based
methods do the same exchanges through files for machines without internet.

Every update carries the container's full state. Applying it replaces the stored
documents, advances the sequence, re-records the fingerprint and stores the signed
server time in one atomic store write; then the in-memory state is swapped whole, so
a concurrent ``require()`` sees the old state or the new one, never a mix.
"""

from __future__ import annotations

import functools
import math
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from licentia.client._clock import CachedMark, DeviceTime, DiscardedMark, system_clock
from licentia.client._container import (
    ClientStatus,
    ContainerReader,
    ContainerState,
    SyncResult,
    sync_result,
)
from licentia.client._documents import VerifiedUpdate, load_public_keys
from licentia.client._entitlements import Entitlement
from licentia.client._exceptions import (
    DeviceTrustError,
    LicentiaClientError,
    NetworkError,
    NotActivatedError,
    ServerError,
    UpdateReplayedError,
    fresh_copy,
)
from licentia.client._files import write_token
from licentia.client._fingerprint import FactorSource, Tolerance, collect_fingerprint
from licentia.client._store import DeviceStore, check_vendor_name, store_directory
from licentia.client._tickets import normalize_ticket_code
from licentia.client._transport import Transport
from licentia.client._virtualization import (
    SystemVirtualizationProbe,
    VirtualizationProbe,
)
from licentia.formats.device import fingerprint_salt

if TYPE_CHECKING:
    import httpx

    from licentia.client._autoupdate import AutoUpdater
    from licentia.client._messages import DeviceSigner
    from licentia.client._push import PushListener


__all__ = ["ClientStatus", "LicenseClient", "SyncResult"]

# How often a failing check may look whether another process changed the store.
STORE_CHECK_INTERVAL = 1.0
# The store itself only refuses hardware with nothing in common; each license applies
# the tolerance its vendor chose (possibly looser than any preset) to the fingerprint
# License Central recorded for it.
_STORE_TOLERANCE = Tolerance.at_least(1)
_LONGEST_PUSH_PAUSE = 600.0  # a server without push is asked again after this


class LicenseClient:
    """The licenses of one vendor on this device. See docs/sdk.md for a guided example.

    ``server_url`` is License Central's base address (None: file-based exchange only);
    ``vendor`` the vendor's slug; ``public_keys`` its verification keys, as
    ``{kid: Ed25519PublicKey}`` or its JWKS document. ``store_dir`` is this vendor's
    store directory (default: the user's data directory). The other arguments are
    seams for other platforms and for tests.

    Construction never fails for an untrusted store: :meth:`require` and the other
    methods raise its error (``STORE_TAMPERED``, ``FINGERPRINT_MISMATCH``) instead, so
    an application can show it. Raises ValueError for an invalid vendor or key set.
    """

    def __init__(
        self,
        server_url: str | None,
        vendor: str,
        public_keys: Mapping[str, Ed25519PublicKey] | Mapping[str, Any],
        *,
        store_dir: Path | None = None,
        factor_source: FactorSource | None = None,
        virtualization_probe: VirtualizationProbe | None = None,
        local_clock: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.vendor = check_vendor_name(vendor)
        self._keys = load_public_keys(public_keys)
        self._local_clock = local_clock or system_clock
        self._fingerprint = collect_fingerprint(fingerprint_salt(vendor), factor_source)
        self._virtualization = (virtualization_probe or SystemVirtualizationProbe())()
        self._transport = (
            Transport(server_url, vendor, transport=transport, timeout=timeout)
            if server_url
            else None
        )
        self._lock = threading.RLock()
        self._auto: AutoUpdater | None = None
        self._open(store_dir if store_dir is not None else store_directory(vendor))

    # -- identity ------------------------------------------------------------------------

    @property
    def device_id(self) -> str:
        """This device's id (its key's JWK thumbprint); raises the store's error if the
        store cannot be opened."""
        return self._opened().device_key_id

    # -- the license check ---------------------------------------------------------------

    def require(
        self, product: str, feature: str | None = None, *, release_date: date | None = None
    ) -> Entitlement:
        """The entitlement that allows ``product`` (and ``feature``) now, from memory.

        ``release_date`` is the application's release date, checked against the end
        of maintenance. Raises NotActivatedError, FeatureMissingError,
        LicenseExpiredError, LeaseExpiredError, MaintenanceEndedError,
        FingerprintMismatchError, VirtualMachineNotAllowedError, ClockRollbackError,
        StoreTamperedError or SignatureInvalidError; never returns without a license.
        """
        try:
            return self._check(product, feature, release_date)
        except LicentiaClientError:
            # Before refusing, look once whether another process (the activation
            # wizard, a second instance) changed the store: a stat, at most once a second.
            if not self._reload_if_store_changed():
                raise
        return self._check(product, feature, release_date)

    def _check(self, product: str, feature: str | None, release_date: date | None) -> Entitlement:
        loaded = self._loaded
        if loaded.problem is not None:
            raise fresh_copy(loaded.problem)
        # The clock only matters for a product the device holds.
        grants = loaded.index.candidates(product, feature)
        return loaded.index.choose(grants, self._trusted.now().timestamp(), release_date)

    def licenses(self) -> list[Entitlement]:
        """Every license on this device, usable now or not, sorted by id.

        Raises the store's error when its documents cannot be trusted.
        """
        loaded = self._loaded
        if loaded.problem is not None:
            raise fresh_copy(loaded.problem)
        return list(loaded.index.entitlements)

    def status(self) -> ClientStatus:
        """The state of this device's licenses, re-read from the store (another process
        may have changed it); persists the time mark on the way.

        Raises StoreTamperedError or FingerprintMismatchError if the store itself cannot
        be opened or read.
        """
        store = self._opened()
        loaded = self._loaded
        # While a sync holds the lock, its result is about to replace the state anyway;
        # re-reading beside it could swap an older state back in.
        if self._lock.acquire(blocking=False):
            try:
                loaded = self._refresh(store)
            finally:
                self._lock.release()
        self._time.mark.flush_quietly()
        problem, now = loaded.problem, self._time.latest()
        if problem is None:
            problem = self._time.rollback()
        entitlements = loaded.index.entitlements
        next_refresh = min((e.refresh_after for e in entitlements), default=None)
        auto = self._auto
        return ClientStatus(
            vendor=self.vendor,
            device_id=store.device_key_id,
            seq=loaded.seq,
            licenses=entitlements,
            next_refresh=next_refresh,
            refresh_due=problem is not None or (next_refresh is not None and next_refresh <= now),
            last_sync=loaded.last_sync,
            problem=problem,
            virtualization=self._virtualization,
            auto_update_running=auto is not None and auto.running,
            auto_update_error=auto.last_error if auto is not None else None,
            push_connected=auto is not None and auto.push is not None and auto.push.connected,
        )

    # -- online --------------------------------------------------------------------------

    def activate(self, ticket: str) -> list[Entitlement]:
        """Activate ``ticket`` on this device online; returns every license it now holds.

        Idempotent: activating the same ticket again consumes nothing more. Raises
        TicketCodeInvalidError for a mistyped code before anything is sent, NetworkError,
        TicketRejectedError, DeviceBlacklistedError, DeviceFlaggedError,
        VirtualMachineNotAllowedError, ServerError, or a verification error of the answer.
        """
        code = normalize_ticket_code(ticket)
        transport = self._online()
        with self._lock:
            loaded = self._refresh(self._opened())
            token = self._request("activate", loaded, ticket=code)
            answer = transport.post("activate", token)
            if answer.not_modified:
                raise _unexpected(answer.status)
            self._apply(answer.text, online=True)
            return list(self._loaded.index.entitlements)

    def sync(self) -> SyncResult:
        """Renew the leases and apply every change License Central holds for this device.

        Conditional: when nothing is due, the request carries the current state and an
        unchanged container costs a 304. Raises NotActivatedError before the first
        activation, NetworkError, DeviceFlaggedError, ServerError, or a verification
        error of the answer. A blacklisted device's sync removes its licenses.
        """
        transport = self._online()
        with self._lock:
            before = self._refresh(self._opened())
            if before.seq == 0:
                raise NotActivatedError(
                    f"This device holds no licenses of {self.vendor} yet, so there is nothing "
                    "to sync. Activate a ticket first."
                )
            conditional = before.problem is None and not self._is_due(before)
            token = self._request("sync", before)
            answer = transport.post(
                "sync", token, if_none_match=before.state if conditional else None
            )
            if answer.not_modified:
                self._record_unchanged_sync()
                return sync_result(before, self._loaded, changed=False)
            update = self._apply(answer.text, online=True)
            return sync_result(before, self._loaded, changed=True, status=update.device_status)

    def return_license(self, license_id: str) -> None:
        """Give ``license_id`` back to License Central, then remove it from this device.

        The license stays here if the server refuses: raises TransferLimitReachedError
        (the template's transfer limit is used up), NetworkError or ServerError.
        Raises NotActivatedError if this device does not hold it.
        """
        transport = self._online()
        with self._lock:
            loaded = self._refresh(self._opened())
            self._ensure_held(loaded, license_id)
            proof = self._signer.return_proof(license_id, now=self._time.local(), seq=loaded.seq)
            answer = transport.post("returns", proof)
            body = None if answer.not_modified else answer.json()
            if not isinstance(body, dict) or body.get("license") != license_id:
                raise _unexpected(answer.status)
            self._remove(license_id)

    # -- files ---------------------------------------------------------------------------

    def create_offline_request(self, path: Path, ticket: str | None = None) -> Path:
        """Write a request file for License Central (the portal, or ``licentia admin
        offline process``): an activation with ``ticket``, a sync without. Returns ``path``.

        Raises TicketCodeInvalidError for a mistyped code before anything is written."""
        code = normalize_ticket_code(ticket) if ticket is not None else None
        with self._lock:
            loaded = self._refresh(self._opened())
            token = self._request("offline", loaded, ticket=code)
            return write_token(Path(path), token)

    def import_update(self, path: Path, receipt_path: Path | None = None) -> Path:
        """Verify and apply an update file, then write the receipt that confirms it.

        The receipt goes to ``receipt_path`` (default: next to the update, suffix
        ``.receipt``); upload it to License Central. Raises SignatureInvalidError,
        WrongDeviceError, UpdateReplayedError (not newer than what this device holds),
        OSError if the file cannot be read.
        """
        token = Path(path).read_text(encoding="ascii", errors="replace").strip()
        with self._lock:
            self._refresh(self._opened())
            self._apply(token, online=False)
            loaded = self._loaded
            receipt = self._signer.receipt(
                now=self._time.local(), seq=loaded.seq, state=loaded.state
            )
            target = Path(receipt_path) if receipt_path else Path(path).with_suffix(".receipt")
            return write_token(target, receipt)

    def create_return_file(self, license_id: str, path: Path) -> Path:
        """Remove ``license_id`` from this device, then write the signed proof to ``path``.

        Upload the proof to License Central to make the license available again. If
        the server refuses it (transfer limit), the next update gives the license
        back. Raises NotActivatedError if this device does not hold it.
        """
        with self._lock:
            loaded = self._refresh(self._opened())
            self._ensure_held(loaded, license_id)
            proof = self._signer.return_proof(license_id, now=self._time.local(), seq=loaded.seq)
            self._remove(license_id)
            return write_token(Path(path), proof)

    # -- auto-update ---------------------------------------------------------------------

    def start_auto_update(
        self,
        *,
        jitter: timedelta = timedelta(minutes=5),
        max_backoff: timedelta = timedelta(hours=1),
        check_interval: timedelta = timedelta(minutes=5),
        push: bool = True,
        poll_interval: timedelta | None = timedelta(minutes=15),
    ) -> None:
        """Sync in a daemon thread whenever a sync is due (see docs/sdk.md).

        With ``push``, it also listens to License Central's push stream and syncs as
        soon as the vendor changes this device's licenses; while no stream is open it
        polls every ``poll_interval`` (None: it syncs only when due). Does nothing if
        it runs already. Raises NetworkError without a server address.
        """
        transport = self._online()
        with self._lock:
            if self._auto is not None and self._auto.running:
                return
            from licentia.client._autoupdate import AutoUpdater

            self._auto = AutoUpdater(
                self.sync,
                self._seconds_until_due,
                jitter=jitter,
                max_backoff=max_backoff,
                check_interval=check_interval,
                on_tick=self._time.mark.flush_quietly,
                poll_interval=poll_interval,
                push=self._push_listener(transport, max_backoff) if push else None,
            )
            self._auto.start()

    def _push_listener(
        self, transport: Transport, max_backoff: timedelta
    ) -> Callable[[Callable[[], None]], PushListener]:
        """Builds the listener of this device's push stream (imported only now)."""
        from licentia.client._push import READ_TIMEOUT, PushListener, StreamEndpoint

        endpoint = StreamEndpoint(
            transport.url("events"),
            self._listen_request,
            transport=transport.http_transport,
            timeout=transport.timeout,
            read_timeout=READ_TIMEOUT,
        )
        pause = min(max_backoff.total_seconds(), _LONGEST_PUSH_PAUSE)
        return lambda nudge: PushListener(endpoint, nudge, max_pause=pause)

    def _listen_request(self) -> tuple[str, dict[str, str]]:
        """A fresh signed ``listen`` request, the body that opens a push stream."""
        with self._lock:
            token = self._request("listen", self._loaded)
        return token, {"Content-Type": "application/jose"}

    def stop_auto_update(self, timeout: float | None = 10.0) -> None:
        """Stop the background sync (a sync in flight finishes first)."""
        auto = self._auto
        if auto is not None:
            auto.stop(timeout)

    def close(self) -> None:
        """Stop the background sync, persist the time mark, close the HTTP client."""
        self.stop_auto_update()
        self._time.mark.close()
        if self._transport is not None:
            self._transport.close()

    def __enter__(self) -> LicenseClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- loading -------------------------------------------------------------------------

    def _open(self, directory: Path | str) -> None:
        self._store: DeviceStore | None = None
        self._fatal: DeviceTrustError | None = None
        self._store_version: tuple[int, int, int] | None = None
        self._store_checked_at = -math.inf
        try:
            store, snapshot = DeviceStore.load(
                directory, fingerprint=self._fingerprint, tolerance=_STORE_TOLERANCE
            )
        except DeviceTrustError as error:
            self._fatal = error
            self._time = DeviceTime(CachedMark(DiscardedMark(), None), self._local_clock)
            self._trusted = self._time.trusted
            self._loaded = ContainerState.refusing(error)
            return
        self._store = store
        self._store_version = snapshot.version
        self._reader = reader = ContainerReader(
            self.vendor,
            store.device_key_id,
            self._keys,
            self._fingerprint,
            self._virtualization,
            store.load_encryption_key,
        )
        self._loaded = loaded = reader.from_snapshot(snapshot)
        mark = CachedMark(
            store,
            loaded.time_floor(snapshot.time_high_water),
            on_unsaved=functools.partial(_close_when_collected, weakref.ref(self)),
        )
        self._time = device_time = DeviceTime(mark, self._local_clock)
        self._trusted = device_time.trusted  # one attribute less on the hot path

    @functools.cached_property
    def _signer(self) -> DeviceSigner:
        """Signs this device's messages; built on first use (only exchanges need it)."""
        store = self._opened()
        from licentia.client._messages import DeviceSigner

        return DeviceSigner(self.vendor, store.signing_key, store.encryption_key)

    def _opened(self) -> DeviceStore:
        if self._store is None:
            assert self._fatal is not None
            raise fresh_copy(self._fatal)
        return self._store

    def _reload_if_store_changed(self) -> bool:
        """Reload if the store changed since this client last read or wrote it; True
        if it reloaded. Cheap and throttled: it runs when a check is about to fail."""
        store, now = self._store, time.monotonic()
        if store is None or now - self._store_checked_at < STORE_CHECK_INTERVAL:
            return False
        self._store_checked_at = now
        if store.version() == self._store_version:
            return False
        if not self._lock.acquire(blocking=False):
            return False  # a sync or an import in progress is about to reload anyway
        try:
            self._refresh(store)
        except DeviceTrustError:
            pass  # _refresh made the client refuse with it
        finally:
            self._lock.release()
        return True

    def _refresh(self, store: DeviceStore) -> ContainerState:
        """Re-read the store (another process may have synced) and return the state.
        Raises StoreTamperedError, and keeps refusing, if the store was tampered with."""
        try:
            snapshot = store.snapshot()
        except DeviceTrustError as error:
            self._store_version = store.version()
            self._loaded = ContainerState.refusing(error)
            raise
        self._store_version = snapshot.version
        loaded = self._loaded
        own_seq = snapshot.sequences.get(store.device_key_id, 0)
        if own_seq != loaded.seq or snapshot.licenses != loaded.documents:
            loaded = self._loaded = self._reader.from_snapshot(snapshot)
        return loaded

    # -- applying updates ----------------------------------------------------------------

    def _apply(self, token: str, *, online: bool) -> VerifiedUpdate:
        """Verify ``token`` and make it the device's state in one store write.

        Online, the update's ``iat`` is fresh signed server time and becomes the time
        mark even if lower (that clears a clock once set forward). From a file it may
        be days old, so it only raises the mark.
        """
        store, before = self._opened(), self._loaded
        update = self._reader.verify_update(token, before.seq)
        current = self._time.mark.read_time_high_water()
        mark = update.issued_at if online or current is None else max(current, update.issued_at)
        try:
            store.apply_update(
                replace_all=update.documents,
                sequences={store.device_key_id: update.seq},
                time_high_water=mark,
                fingerprint=self._fingerprint,
                last_sync=update.issued_at,
            )
        except ValueError as error:  # another process applied a newer update meanwhile
            if not online:
                raise UpdateReplayedError() from error
            # License Central answered each sibling process with its own update, and a
            # newer one is stored already: it holds everything this one does, so the
            # device has what was asked for. Adopt the store's state, not an error.
            if self._refresh(store).seq < update.seq:
                raise UpdateReplayedError() from error
            return update
        self._store_version = store.version()
        self._time.persisted(mark, server_time=online)
        self._loaded = self._reader.from_update(update)
        return update

    def _record_unchanged_sync(self) -> None:
        now, mark = self._time.latest(), self._time.mark.read_time_high_water()
        store = self._opened()
        store.apply_update(time_high_water=mark, last_sync=now)
        self._store_version = store.version()
        if mark is not None:
            self._time.persisted(mark, server_time=False)
        self._loaded = self._loaded.synced_at(now)

    def _remove(self, license_id: str) -> None:
        store = self._opened()
        store.apply_update(remove=[license_id])
        self._store_version = store.version()
        self._loaded = self._reader.without(self._loaded, license_id)

    # -- helpers -------------------------------------------------------------------------

    def _online(self) -> Transport:
        if self._transport is None:
            raise NetworkError(
                "This application has no License Central address configured. "
                "Use file-based activation: create a request file and import the update."
            )
        return self._transport

    def _request(self, op: str, loaded: ContainerState, *, ticket: str | None = None) -> str:
        return self._signer.request(
            op,
            now=self._time.local(),
            seq=loaded.seq,
            state=loaded.state,
            fingerprint=self._fingerprint,
            vm=self._virtualization.is_virtual,
            ticket=ticket,
        )

    def _ensure_held(self, loaded: ContainerState, license_id: str) -> None:
        if license_id not in loaded.documents:
            raise NotActivatedError(
                f"License {license_id} is not on this device, so it cannot be returned from "
                "here. Return it from the device that holds it."
            )

    def _is_due(self, loaded: ContainerState) -> bool:
        due = self._seconds_until_due(loaded)
        return due is not None and due <= 0

    def _seconds_until_due(self, loaded: ContainerState | None = None) -> float | None:
        """Seconds until a sync is due; 0 when a sync could clear a problem; None when
        there is nothing to sync (never activated, or the store cannot be opened)."""
        loaded = loaded or self._loaded
        if self._store is None or loaded.seq == 0:
            return None
        if loaded.problem is not None or self._time.rollback() is not None:
            return 0.0
        now = self._time.latest()
        return max(0.0, (loaded.sync_due_at(now) - now).total_seconds())


def _close_when_collected(client: weakref.ref[LicenseClient], mark: CachedMark) -> None:
    """Persist ``mark`` a last time when its client is garbage-collected or the
    interpreter exits. Arranged when the mark first moves: until then the store holds
    its value, and the cold start need not pay for a finalizer."""
    owner = client()
    if owner is not None:
        weakref.finalize(owner, mark.close)


def _unexpected(status: int) -> ServerError:
    return ServerError(
        f"License Central gave an answer this SDK does not expect (HTTP {status}). "
        "Check the server address, or update the application.",
        status=status,
    )
