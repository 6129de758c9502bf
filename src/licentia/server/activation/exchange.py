"""What every device call shares: its ``Exchange``, its answers, and the suspicions a
request is checked for before anything else (docs/device-protocol.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import ConflictError, LicentiaError, PermissionDeniedError
from licentia.domain.licenses import LicenseState
from licentia.domain.templates import StoredOptions
from licentia.formats.fingerprint import fingerprint_matches
from licentia.server.activation.messages import DeviceRequest
from licentia.server.db.base import utcnow
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import Signer, current_signer, unsealed_signer
from licentia.server.tenancy.services import get_vendor_by_slug

SEEN_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class UpdateIssued:
    token: str
    seq: int
    state: str


@dataclass(frozen=True)
class NotModified:
    state: str


@dataclass(frozen=True)
class Refused:
    error: LicentiaError


class VmNotAllowedError(PermissionDeniedError):
    code = "VM_NOT_ALLOWED"


class VendorRef(Protocol):
    """The vendor a device call is addressed to: a Vendor, or its id and slug."""

    @property
    def id(self) -> str: ...
    @property
    def slug(self) -> str: ...


@dataclass(frozen=True)
class _Found:
    id: str
    slug: str


class Exchange:
    """What every device call needs besides the session: its vendor, read when first
    asked for unless the call's own read found it (:meth:`found_vendor`), and the
    vendor's signing key, decrypted only when an update is actually issued (a 304
    sync never needs it)."""

    def __init__(
        self,
        session: Session,
        master: MasterKey,
        vendor_slug: str,
        *,
        now: datetime | None = None,
        source_ip: str | None = None,
    ) -> None:
        self.master = master
        self.vendor_slug = vendor_slug
        self.now = now or utcnow()
        self.source_ip = source_ip
        self._session = session
        self._vendor: VendorRef | None = None
        self._signer: Signer | None = None

    @property
    def vendor(self) -> VendorRef:
        """Raises NotFoundError if no vendor has this slug."""
        if self._vendor is None:
            self._vendor = get_vendor_by_slug(self._session, self.vendor_slug)
        return self._vendor

    def found_vendor(self, vendor_id: str) -> None:
        """The vendor's id, read along with other rows."""
        self._vendor = _Found(vendor_id, self.vendor_slug)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = current_signer(self._session, self.vendor.id, self.master)
        return self._signer

    def use_key(self, kid: str, sealed: bytes) -> None:
        """Sign with this key (the vendor's current one, read along with other rows)
        instead of reading it when an update is issued."""
        self._signer = unsealed_signer(self.master, kid, sealed)

    def actor(self, device_key_id: str) -> Actor:
        return Actor(ActorKind.DEVICE, device_key_id, self.vendor.id, frozenset(), self.source_ip)


class Registered(Protocol):
    """A device as the suspicion checks see it: a Device, or a value with its columns."""

    @property
    def seq(self) -> int: ...
    @property
    def confirmed_seq(self) -> int: ...
    @property
    def fingerprint(self) -> dict[str, Any]: ...


class Held(Protocol):
    """A license on a device: a License, or a value with its columns."""

    @property
    def state(self) -> str: ...
    @property
    def valid_until(self) -> datetime | None: ...
    @property
    def options(self) -> dict[str, Any]: ...


Suspicion = tuple[str, str, LicentiaError]  # the flag's kind, its detail, the answer


def suspicion(
    device: Registered, licenses: Iterable[Held], request: DeviceRequest
) -> Suspicion | None:
    """What the request shows against the device and the licenses it holds: a replay
    (a sequence never issued, or one it went back from) or a clone (other hardware)."""
    if request.seq > device.seq:
        detail = f"claims sequence {request.seq}, but only {device.seq} was ever issued"
        return devices.REPLAY, detail, ConflictError(detail, code="DEVICE_FLAGGED")
    if request.seq < device.confirmed_seq:
        detail = f"went back to sequence {request.seq} after confirming {device.confirmed_seq}"
        return devices.REPLAY, detail, ConflictError(detail, code="DEVICE_FLAGGED")
    for license_ in licenses:
        tolerance = StoredOptions(license_.options).fingerprint_tolerance
        if not fingerprint_matches(device.fingerprint, request.fingerprint, tolerance):
            detail = "the same device key was presented from different hardware"
            error = PermissionDeniedError(
                detail + "; the vendor was told", code="FINGERPRINT_MISMATCH"
            )
            return devices.CLONE, detail, error
    return None


def refuse(session: Session, ex: Exchange, device_id: str, found: Suspicion) -> Refused:
    """Flag the device for what was found; the answer the caller commits, then raises."""
    kind, detail, error = found
    device = session.get_one(Device, device_id)
    devices.flag_device(session, ex.actor(device.key_id), device, kind, detail)
    return Refused(error)


def usable(license_: Held, now: datetime) -> bool:
    """Whether the device may use the license now (the update carries it)."""
    return license_.state == LicenseState.ACTIVATED and (
        license_.valid_until is None or license_.valid_until > now
    )
