"""The cloud client: licenses held in a cloud container, used from a registered device.

::

    client = CloudClient("team.licred")
    client.check("CAD")                       # may I use it now? (token cached)
    client.consume("CAD", 3, key=job_id)      # pay per use, counted once per key
    with client.seat("CAD", "render") as seat:
        ...                                   # a concurrent seat, kept by heartbeats
        seat.ensure()                         # raises SeatLostError if it was lost
    borrowed = client.borrow("CAD", days=7)   # a seat to take offline

The client registers this device with the container's credential on first use and
keeps the device token on disk (:mod:`licentia.client._registration`). Calls that can
be repeated safely are retried after transient failures with exponential backoff and
full jitter (:mod:`licentia.client._retry`). Every refusal is a typed error carrying
License Central's code. docs/cloud.md describes the protocol and the guarantees.
"""

from __future__ import annotations

import getpass
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from licentia.client._borrow import (
    BorrowedSeat,
    BorrowShelf,
    borrow_request,
    borrow_return_proof,
    ensure_feature,
    read_borrow,
)
from licentia.client._clock import TrustedClock, system_clock
from licentia.client._cloud_api import CloudApi, VendorKeys
from licentia.client._documents import load_public_keys
from licentia.client._exceptions import (
    LeaseExpiredError,
    LicentiaClientError,
    NotActivatedError,
    SeatLostError,
)
from licentia.client._fingerprint import FactorSource, Fingerprint, collect_fingerprint
from licentia.client._licred import CloudCredential
from licentia.client._registration import DeviceSession, RegistrationFile
from licentia.client._retry import NO_RETRY, RetryPolicy, is_transient, retry_call
from licentia.client._seat import Seat, SeatGrant, SeatRequest
from licentia.client._store import DeviceStore, store_directory
from licentia.client._tokens import Expected, ServerTime, check_claims, field, malformed
from licentia.formats.device import fingerprint_salt, unverified_claims
from licentia.formats.document_types import ACCESS_TYP, BORROW_TYP, SEAT_TYP
from licentia.formats.jws import SignatureInvalidError as MalformedDocumentError

if TYPE_CHECKING:
    import httpx

    from licentia.client._push import PushListener

__all__ = ["MAX_WAIT_SECONDS", "AccessToken", "CloudClient", "Consumption"]

MAX_WAIT_SECONDS = 60.0  # the longest a checkout may wait in line (the server's limit)
_PUSH_PAUSE = 600.0  # the longest pause between attempts to open the push stream
REFRESH_SHARE = 0.25  # renew an access token once less than a quarter of its life is left


@dataclass(frozen=True)
class AccessToken:
    """A short-lived, signed permission to use ``product`` now.

    ``source`` says where it came from: ``server`` (just issued), ``cache`` (issued
    earlier and still valid: License Central was not asked, or could not be reached)
    or ``borrow`` (a borrowed seat, valid offline until ``expires_at``).
    """

    token: str
    license_id: str
    product: str
    features: tuple[str, ...]
    expires_at: datetime
    source: Literal["server", "cache", "borrow"]
    claims: Mapping[str, Any]


@dataclass(frozen=True)
class Consumption:
    """Units taken from a counter. ``replayed``: the key was used before and this is
    the first consumption's answer again (nothing was taken twice)."""

    license_id: str
    units: int
    balance_after: int
    key: str
    replayed: bool


@dataclass(frozen=True)
class _Cached:
    access: AccessToken
    fresh_until: float  # monotonic: reuse without asking until then
    valid_until: float  # monotonic: usable when License Central is unreachable until then


class CloudClient:
    """A device's access to one cloud container; safe to share between threads."""

    def __init__(
        self,
        credential: str | os.PathLike[str] | CloudCredential,
        *,
        public_keys: Mapping[str, Any] | None = None,
        server_url: str | None = None,
        device_name: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        device_store: DeviceStore | None = None,
        factor_source: FactorSource | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = system_clock,
    ) -> None:
        """``credential``: a ``.licred`` path, its JSON text or a CloudCredential.

        ``public_keys``: the vendor's verification keys shipped with the application (a
        JWKS document or ``{kid: Ed25519PublicKey}``), the trust anchor for every token
        and the only one for borrowed seats, which are used offline: without it tokens
        are checked against keys fetched from the server, and borrowing is refused.
        ``server_url`` overrides the file's. ``state_dir`` holds the registration and
        borrowed seats (default: a per-user data directory; with an explicit
        ``state_dir`` the device store for borrowing lives there too). ``transport`` is
        httpx's seam (tests, proxies). Raises ValueError for a malformed credential or
        key set, OSError for an unreadable file."""
        self.credential = (
            credential
            if isinstance(credential, CloudCredential)
            else CloudCredential.load(credential)
        )
        if server_url is not None:
            self.credential = replace(self.credential, server_url=server_url)
        self.device_name = (device_name or socket.gethostname() or "device")[:200]
        self.timeout = timeout
        if state_dir is None:
            self.state_dir = _default_state_dir(self.credential)
            self._device_directory = store_directory(self.credential.vendor)
        else:
            self.state_dir = Path(state_dir)
            self._device_directory = self.state_dir / "device"
        self._retry = retry or RetryPolicy()
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._time = ServerTime(wall_clock)
        self._api = CloudApi(
            self.credential.server_url, self.credential.vendor, transport=transport, timeout=timeout
        )
        self._keys = (
            VendorKeys(load_public_keys(public_keys))
            if public_keys is not None
            else VendorKeys(fetch=self._api.jwks)
        )
        self._session = DeviceSession(
            self._api,
            self.credential,
            RegistrationFile(self.state_dir),
            name=self.device_name,
            retry=self._retry,
        )
        self._shelf = BorrowShelf(self.state_dir / "borrows")
        self._factor_source = factor_source
        self._store = device_store
        self._fingerprint_value: Fingerprint | None = None
        self._lock = threading.RLock()
        self._tokens: dict[tuple[str, str | None], _Cached] = {}
        self._push: PushListener | None = None

    @property
    def vendor(self) -> str:
        return self.credential.vendor

    @property
    def container_id(self) -> str:
        return self.credential.container_id

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening for pushes and close the HTTP connections (seats still open
        keep their own threads)."""
        self.stop_push()
        self._api.close()

    # -- push --------------------------------------------------------------------

    def start_push(self) -> None:
        """Listen to License Central's push stream for this container in a daemon
        thread: when the vendor changes its licenses (an extension, a withdrawal), the
        access tokens kept here stop counting as fresh, so the next :meth:`check` asks
        License Central. Reconnects with backoff; does nothing if it runs already."""
        with self._lock:
            if self._push is not None:
                return
            from licentia.client._push import READ_TIMEOUT, PushListener, StreamEndpoint

            endpoint = StreamEndpoint(
                self._api.url("events"),
                self._listen_headers,
                transport=self._api.http_transport,
                timeout=self._api.timeout,
                read_timeout=READ_TIMEOUT,
            )
            self._push = PushListener(endpoint, self._tokens_changed, max_pause=_PUSH_PAUSE)
            self._push.start()

    def stop_push(self) -> None:
        """Stop listening for pushes."""
        with self._lock:
            push, self._push = self._push, None
        if push is not None:
            push.stop()

    @property
    def push_connected(self) -> bool:
        """Whether a push stream is open now."""
        push = self._push
        return push is not None and push.connected

    def _listen_headers(self) -> tuple[str, dict[str, str]]:
        return "", {"Authorization": f"Bearer {self._session.registration().token}"}

    def _tokens_changed(self) -> None:
        for key, cached in list(self._tokens.items()):
            self._tokens[key] = replace(cached, fresh_until=-math.inf)

    # -- registration -----------------------------------------------------------

    def register(self, *, again: bool = False) -> str:
        """Make sure this device is registered; return its device id.

        Registers only if no registration for the current credential is stored (or
        ``again``, e.g. after the administrator deregistered this device). Raises
        CredentialInvalidError, DeviceLimitReachedError and NetworkError.
        """
        if again:
            self._session.forget()
        return self._session.registration().device_id

    def deregister(self) -> None:
        """Give this device's place in the container up (frees one of its device slots)."""
        self._device_call("DELETE", "devices/current")
        self._session.forget()

    def _device_call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        return self._session.call(method, path, body, timeout=timeout)

    # -- checks and counters -----------------------------------------------------

    def check(self, product: str, feature: str | None = None) -> AccessToken:
        """May this device use ``product`` (``feature``) now?

        Answers a valid access token: a borrowed seat's (offline), a cached one while
        most of its life is left, or a fresh one from License Central. When License
        Central cannot be reached, a cached token is used until it expires. Raises
        NetworkError when there is no valid token and no network, and the typed refusal
        otherwise (NotActivatedError, FeatureMissingError, LicenseExpiredError…).
        """
        borrowed = self._borrowed_access(product, feature)
        if borrowed is not None:
            return borrowed
        now = self._monotonic()
        cached = self._tokens.get((product, feature))
        if cached is not None and now < cached.fresh_until:
            return replace(cached.access, source="cache")
        usable = cached if cached is not None and now < cached.valid_until else None
        try:
            return self._fetch_access(product, feature, NO_RETRY if usable else self._retry)
        except LicentiaClientError as error:
            if usable is None or not is_transient(error):
                raise
            return replace(usable.access, source="cache")

    def _fetch_access(self, product: str, feature: str | None, policy: RetryPolicy) -> AccessToken:
        sent = self._monotonic()
        body = {"product": product, "feature": feature}
        answer = retry_call(lambda: self._device_call("POST", "check", body), policy)
        token, license_id = field(answer, "token", str), field(answer, "license_id", str)
        expected = self._expected(product, feature, license_id=license_id, scope=True)
        claims = self._verified(token, ACCESS_TYP, expected)
        # Usable while the token's own lifetime, counted from the sending, lasts, and
        # never past its exp by the trusted clock.
        left = claims["exp"] - self._time.now()
        valid_until = min(sent + claims["exp"] - claims["iat"], self._monotonic() + left)
        access = AccessToken(
            token=token,
            license_id=license_id,
            product=product,
            features=tuple(str(f) for f in claims["features"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            source="server",
            claims=claims,
        )
        fresh = sent + (valid_until - sent) * (1 - REFRESH_SHARE)
        self._tokens[(product, feature)] = _Cached(access, fresh, valid_until)
        return access

    def consume(
        self, product: str, units: int, key: str | None = None, *, feature: str | None = None
    ) -> Consumption:
        """Take ``units`` from the product's counter, exactly once per ``key``.

        Pass a key that names the unit of work (a job id) so that a retry after a crash
        cannot count twice; without one a random key is made, which still protects this
        call's own retries. Raises UnitsExhaustedError (nothing taken), ServerError
        ``IDEMPOTENCY_KEY_REUSED`` (the key was used for another amount), NetworkError.
        """
        if units <= 0:
            raise ValueError("units must be positive")
        body = {
            "product": product,
            "feature": feature,
            "units": units,
            "key": key or str(uuid.uuid4()),
        }
        answer = retry_call(
            lambda: self._device_call("POST", "counters/consume", body), self._retry
        )
        if field(answer, "key", str) != body["key"] or field(answer, "units", int) != units:
            raise malformed("it is about another consumption")
        return Consumption(
            license_id=field(answer, "license_id", str),
            units=units,
            balance_after=field(answer, "balance_after", int),
            key=str(body["key"]),
            replayed=field(answer, "replayed", bool),
        )

    # -- seats --------------------------------------------------------------------

    def seat(
        self,
        product: str,
        feature: str | None = None,
        *,
        user: str | None = None,
        process: str | None = None,
        wait: float = 0.0,
        on_lost: Callable[[SeatLostError], None] | None = None,
    ) -> Seat:
        """A concurrent seat of ``product``, to use as ``with client.seat(...) as seat:``.

        ``user`` (default: the login name) and ``process`` (default: this process id)
        are the holder identity; the device is this registration. ``wait`` (0-60 s)
        queues for a free seat. ``on_lost(error)`` is called once if the seat is lost
        (usually on the heartbeat thread). Entering raises NoSeatAvailableError when no seat
        is free in time; see :class:`Seat`.
        """
        if not 0 <= wait <= MAX_WAIT_SECONDS:
            raise ValueError(f"wait is 0 to {MAX_WAIT_SECONDS:.0f} seconds")
        request = SeatRequest(
            product=product,
            feature=feature,
            user=user or _login_name(),
            device=None,
            process=process or str(os.getpid()),
            wait=wait,
        )
        return Seat(
            _SeatChannel(self),
            request,
            retry=self._retry,
            on_lost=on_lost,
            monotonic=self._monotonic,
        )

    # -- borrowing ----------------------------------------------------------------

    def borrow(
        self, product: str, days: int, *, feature: str | None = None, user: str | None = None
    ) -> BorrowedSeat:
        """Borrow a seat for ``days`` of offline use; the document is kept on this device
        and :meth:`check` answers from it without the network until it ends.

        Raises NoSeatAvailableError, ServerError ``BORROW_NOT_ALLOWED`` /
        ``BORROW_TOO_LONG``, and the device store's errors (FingerprintMismatchError…).
        """
        self._require_pinned_keys()
        store = self._device_store()
        request = borrow_request(store, self.vendor, self._fingerprint(), self._wall_clock())
        body = {
            "product": product,
            "feature": feature,
            "user": user or _login_name(),
            "days": days,
            "request": request,
        }
        answer = retry_call(lambda: self._device_call("POST", "borrow", body), self._retry)
        document, lease_id = field(answer, "document", str), field(answer, "lease_id", str)
        seat = self._read_borrow(document)
        expected = Expected(
            self.vendor,
            store.device_key_id,
            product,
            device=self._session.registration().device_id,
            feature=feature,
            license_id=field(answer, "license_id", str),
            lease=lease_id,
        )
        check_claims(seat.claims, expected, self._time.now())
        self._shelf.put(seat.lease_id, document)
        return seat

    def borrows(self) -> list[BorrowedSeat]:
        """The borrowed seats this device may use offline now. Ended borrows are dropped
        (their seats freed themselves on the server); others that do not verify here
        (changed hardware, another device) are skipped: :meth:`borrowed` says why."""
        return [seat for seat in self._stored_borrows().values() if isinstance(seat, BorrowedSeat)]

    def borrowed(self, product: str, feature: str | None = None) -> BorrowedSeat:
        """The borrowed seat of ``product`` usable offline now.

        Raises NotActivatedError if none was borrowed (or it ended), FeatureMissingError,
        and why a stored borrow cannot be used here: FingerprintMismatchError,
        WrongDeviceError, SignatureInvalidError, ClockRollbackError; ValueError without
        ``public_keys``.
        """
        self._require_pinned_keys()
        refusal: LicentiaClientError | None = None
        for document, seat in self._stored_borrows().items():
            if isinstance(seat, BorrowedSeat):
                if seat.product == product:
                    ensure_feature(seat, feature)
                    return seat
            elif _claimed_product(document) == product:
                refusal = seat
        raise refusal or NotActivatedError(
            f"No seat of {product} is borrowed on this device. "
            "Connect to License Central and borrow one before going offline."
        )

    def _stored_borrows(self) -> dict[str, BorrowedSeat | LicentiaClientError]:
        """Each stored document, verified offline, or why it does not verify (nothing
        without pinned keys: a document is only as good as the key that checks it)."""
        found: dict[str, BorrowedSeat | LicentiaClientError] = {}
        documents = self._shelf.documents() if self._keys.pinned else {}
        for lease_id, document in documents.items():
            try:
                found[document] = self._read_borrow(document)
            except LeaseExpiredError:
                self._shelf.remove(lease_id)
            except LicentiaClientError as error:
                found[document] = error
        return found

    def return_borrow(self, borrowed: BorrowedSeat) -> None:
        """Give a borrowed seat back early, online: the seat is free at once."""
        release = f"seats/{borrowed.lease_id}?fence={borrowed.claims.get('fence')}"
        retry_call(lambda: self._device_call("DELETE", release), self._retry)
        self._shelf.remove(borrowed.lease_id)

    def borrow_return_file(
        self, borrowed: BorrowedSeat, path: str | os.PathLike[str] | None = None
    ) -> str:
        """Give a borrowed seat back offline: the signed return file (written to ``path``
        if given) is uploaded later from any online machine
        (:meth:`submit_borrow_return`). This device stops using the borrow at once."""
        proof = borrow_return_proof(
            self._device_store(), self.vendor, borrowed.lease_id, self._wall_clock()
        )
        if path is not None:
            Path(path).write_text(proof + "\n", encoding="ascii")
        self._shelf.remove(borrowed.lease_id)
        return proof

    def submit_borrow_return(self, proof: str) -> None:
        """Upload a return file's content; the borrowed seat is free at once."""
        retry_call(
            lambda: self._api.call("POST", "borrow/returns", content=proof.strip()), self._retry
        )

    def _borrowed_access(self, product: str, feature: str | None) -> AccessToken | None:
        for seat in self.borrows():
            if seat.allows(product, feature):
                ensure_feature(seat, feature)
                return AccessToken(
                    token=seat.document,
                    license_id=seat.license_id,
                    product=seat.product,
                    features=seat.features,
                    expires_at=seat.expires_at,
                    source="borrow",
                    claims=seat.claims,
                )
        return None

    def _require_pinned_keys(self) -> None:
        if not self._keys.pinned:
            raise ValueError(
                "borrowed seats are used offline, so they need the vendor's public keys "
                "shipped with the application: pass public_keys to CloudClient"
            )

    def _read_borrow(self, document: str) -> BorrowedSeat:
        claims = self._keys.verify(document, typ=BORROW_TYP)
        store = self._device_store()
        return read_borrow(
            claims,
            document,
            vendor=self.vendor,
            device_id=store.device_key_id,
            fingerprint=self._fingerprint(),
            now=TrustedClock(store, local_clock=self._wall_clock).now(),
        )

    # -- shared plumbing ---------------------------------------------------------

    def _verified(self, token: str, typ: str, expected: Expected) -> dict[str, Any]:
        """The claims of ``token`` once its signature, ``typ`` and every claim
        ``expected`` names check (see :mod:`licentia.client._tokens`)."""
        claims = self._keys.verify(token, typ=typ)
        check_claims(claims, expected, self._time.now())
        self._time.saw(claims["iat"])
        return claims

    def _expected(
        self,
        product: str,
        feature: str | None,
        *,
        license_id: str,
        lease: str | None = None,
        fence: int | None = None,
        scope: bool = False,
    ) -> Expected:
        return Expected(
            vendor=self.vendor,
            audience=self.container_id,
            product=product,
            device=self._session.registration().device_id,
            feature=feature,
            license_id=license_id,
            lease=lease,
            fence=fence,
            scope=scope,
        )

    def _fingerprint(self) -> Fingerprint:
        with self._lock:
            if self._fingerprint_value is None:
                salt = fingerprint_salt(self.vendor)
                self._fingerprint_value = collect_fingerprint(salt, self._factor_source)
            return self._fingerprint_value

    def _device_store(self) -> DeviceStore:
        with self._lock:
            if self._store is None:
                self._store = DeviceStore.open(
                    self._device_directory, fingerprint=self._fingerprint()
                )
            return self._store


class _SeatChannel:
    """The seat calls of one client, each a single attempt (the seat decides on retries)."""

    def __init__(self, client: CloudClient) -> None:
        self._client = client

    def checkout(self, body: Mapping[str, Any], *, wait: float) -> dict[str, Any]:
        device = body.get("device") or self._client.register()
        return self._client._device_call(
            "POST", "seats", {**body, "device": device}, timeout=self._client.timeout + wait
        )

    def heartbeat(self, lease_id: str, fence: int) -> dict[str, Any]:
        return self._client._device_call("POST", f"seats/{lease_id}/heartbeat", {"fence": fence})

    def release(self, lease_id: str, fence: int) -> None:
        self._client._device_call("DELETE", f"seats/{lease_id}?fence={fence}")

    def seat_claims(self, token: str, request: SeatRequest, grant: SeatGrant) -> dict[str, Any]:
        client = self._client
        expected = client._expected(
            request.product,
            request.feature,
            license_id=grant.license_id,
            lease=grant.lease_id,
            fence=grant.fence,
        )
        return client._verified(token, SEAT_TYP, expected)


def _claimed_product(document: str) -> Any:
    """The product a stored borrow document names, unchecked (to say why it cannot be
    used); None for one that cannot even be read."""
    try:
        return unverified_claims(document).get("product")
    except MalformedDocumentError:
        return None


def _login_name() -> str:
    try:
        return getpass.getuser()[:200] or "user"
    except (KeyError, OSError):  # no login name in some containers and services
        return "user"


def _default_state_dir(credential: CloudCredential) -> Path:
    root = store_directory(credential.vendor).parent
    return root / "cloud" / credential.vendor / credential.container_id
