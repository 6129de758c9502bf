"""Online and file-based activation, sync, receipts and returns (docs/device-protocol.md).

Every entry point locks the device row first, so two requests of one device run one
after the other, and binds licenses with a conditional update, so that however many
devices race for a ticket, a license goes to exactly one of them.

Suspicions (clone, replay, manipulation) are recorded *and* refused: the service
returns a ``Refused`` outcome instead of raising, so the caller commits the flag
before it answers with the error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import (
    ConflictError,
    LicentiaError,
    NotFoundError,
    PermissionDeniedError,
)
from licentia.domain.licenses import LicenseState
from licentia.formats.device import RECEIPT_TYP, RETURN_TYP, state_hash
from licentia.formats.fingerprint import fingerprint_matches
from licentia.server.activation.documents import build_update
from licentia.server.activation.messages import DeviceRequest, read_signed_by, signer_of
from licentia.server.audit.services import record
from licentia.server.catalog.models import Template
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device, DeviceUpdate, LicenseReturn
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import Signer
from licentia.server.licenses.models import License
from licentia.server.orders.services import find_ticket
from licentia.server.tenancy.models import Vendor

_SEEN_GRANULARITY = timedelta(minutes=1)
_BINDABLE = (LicenseState.AVAILABLE.value, LicenseState.RETURNED.value)


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


@dataclass
class Exchange:
    """What every device call needs besides the session. The vendor's signing key is
    decrypted only when an update is actually issued (a 304 sync never needs it)."""

    vendor: Vendor
    load_signer: Callable[[], Signer]
    master: MasterKey
    now: datetime
    source_ip: str | None = None
    _signer: Signer | None = field(default=None, repr=False)

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            self._signer = self.load_signer()
        return self._signer

    def actor(self, device_key_id: str) -> Actor:
        return Actor("device", device_key_id, self.vendor.id, frozenset(), self.source_ip)


def activate(session: Session, ex: Exchange, request: DeviceRequest) -> UpdateIssued | Refused:
    """Bind one license per template of the ticket to the device and issue an update.

    Idempotent: a device that already holds a license of the ticket's template keeps
    it and takes no other. Raises TICKET_CODE_INVALID / TICKET_NOT_FOUND,
    ``NO_LICENSE_AVAILABLE``, ``WRONG_DELIVERY``, ``VM_NOT_ALLOWED``,
    ``DEVICE_BLACKLISTED``, ``DEVICE_FLAGGED``.
    """
    if request.ticket is None:
        raise ConflictError("an activation needs a ticket code", code="TICKET_REQUIRED")
    device = _device(session, ex, request, create=True)
    if isinstance(device, Refused):
        return device
    devices.ensure_usable(session, device)
    ticket = find_ticket(session, ex.vendor.id, ex.master, request.ticket)
    _bind_ticket(session, ex, device, ticket.id, request.vm)
    return _issue(session, ex, device)


def sync(
    session: Session, ex: Exchange, request: DeviceRequest, *, conditional: bool
) -> UpdateIssued | NotModified | Refused:
    """Bring the device up to date: renewed leases and every change since its last sync.

    With ``conditional``, answers NotModified when the device already holds the
    current state and its leases need no renewal yet. A blacklisted device gets an
    update that removes all its licenses.
    """
    device = _device(session, ex, request, create=False)
    if isinstance(device, Refused):
        return device
    if device.status != devices.BLACKLISTED:
        devices.ensure_usable(session, device)
    _confirm_online(session, device, request)
    current = _usable_licenses(session, device, ex.now)
    state = state_hash((item.id, item.version) for item in current)
    fresh = request.seq == device.seq and request.state == state
    if conditional and fresh and not _lease_due(device, current, ex.now):
        return NotModified(state)
    return _issue(session, ex, device)


def process_offline_request(
    session: Session, ex: Exchange, request: DeviceRequest
) -> UpdateIssued | Refused:
    """A request file: an activation when it carries a ticket, a sync otherwise."""
    if request.ticket is not None:
        return activate(session, ex, request)
    result = sync(session, ex, request, conditional=False)
    assert not isinstance(result, NotModified)
    return result


def confirm_receipt(session: Session, ex: Exchange, token: str) -> int | Refused:
    """Record that the device imported an update. A receipt that does not match what
    was issued at its ``seq`` flags the device (manipulation suspected)."""
    device = _registered(session, ex, token)
    claims = read_signed_by(
        token, _public_key(device), typ=RECEIPT_TYP, vendor_slug=ex.vendor.slug, now=ex.now
    )
    seq, state = claims.get("seq"), claims.get("state")
    issued = session.scalar(
        select(DeviceUpdate).where(DeviceUpdate.device_id == device.id, DeviceUpdate.seq == seq)
    )
    if issued is None or issued.state != state:
        detail = f"receipt for seq {seq} does not match what was issued"
        devices.flag_device(session, ex.actor(device.key_id), device, devices.MANIPULATION, detail)
        return Refused(ConflictError(detail + "; the vendor was told", code="RECEIPT_MISMATCH"))
    issued.confirmed_at = issued.confirmed_at or ex.now
    device.confirmed_seq = max(device.confirmed_seq, issued.seq)
    return issued.seq


def return_license(session: Session, ex: Exchange, token: str) -> License:
    """Make a license the device gave up available again.

    Idempotent per proof. Raises ``LICENSE_NOT_ON_DEVICE`` and
    ``TRANSFER_LIMIT_REACHED`` (the license then stays on the device).
    """
    device = _registered(session, ex, token)
    claims = read_signed_by(
        token, _public_key(device), typ=RETURN_TYP, vendor_slug=ex.vendor.slug, now=ex.now
    )
    proof_id, license_id = str(claims.get("jti")), str(claims.get("license"))
    license_ = session.scalar(
        select(License)
        .where(License.id == license_id, License.vendor_id == ex.vendor.id)
        .with_for_update()
    )
    if license_ is None:
        raise NotFoundError("license", license_id)
    if session.scalar(select(LicenseReturn.id).where(LicenseReturn.proof_id == proof_id)):
        return license_
    if license_.device_id != device.id:
        raise ConflictError("this license is not on this device", code="LICENSE_NOT_ON_DEVICE")
    _check_transfer_limit(session, license_, ex.now)
    before = {"state": license_.state, "device_id": device.id}
    license_.state = (
        LicenseState.RETURNED.value if license_.state == LicenseState.ACTIVATED else license_.state
    )
    license_.device_id, license_.version, license_.updated_at = None, license_.version + 1, ex.now
    session.add(
        LicenseReturn(
            vendor_id=ex.vendor.id,
            license_id=license_.id,
            device_id=device.id,
            proof_id=proof_id,
            returned_at=ex.now,
        )
    )
    record(
        session,
        ex.actor(device.key_id),
        "license.returned",
        "license",
        license_.id,
        before=before,
        after={"state": license_.state, "device_id": None},
    )
    return license_


# --- steps -----------------------------------------------------------------------------


def _device(
    session: Session, ex: Exchange, request: DeviceRequest, *, create: bool
) -> Device | Refused:
    device = devices.lock_device(session, ex.vendor.id, request.device_id)
    if device is None:
        if not create:
            raise NotFoundError("device", request.device_id, code="DEVICE_UNKNOWN")
        return devices.register_device(
            session,
            ex.vendor.id,
            key_id=request.device_id,
            public_key=request.public_key,
            encryption_key=request.encryption_key,
            fingerprint=request.fingerprint,
            vm=request.vm,
        )
    suspicion = _suspicion(session, device, request)
    if suspicion is not None:
        kind, detail, error = suspicion
        devices.flag_device(session, ex.actor(device.key_id), device, kind, detail)
        return Refused(error)
    _note_seen(device, request, ex.now)
    return device


def _note_seen(device: Device, request: DeviceRequest, now: datetime) -> None:
    """Record what the device presented, writing only what changed: an unchanged sync
    then updates no row (``last_seen_at`` is kept to the minute on purpose)."""
    if device.fingerprint != request.fingerprint:
        device.fingerprint = request.fingerprint
    if device.vm != request.vm:
        device.vm = request.vm
    if device.last_seen_at is None or now - device.last_seen_at >= _SEEN_GRANULARITY:
        device.last_seen_at = now


def _suspicion(
    session: Session, device: Device, request: DeviceRequest
) -> tuple[str, str, LicentiaError] | None:
    if request.seq > device.seq:
        detail = f"claims sequence {request.seq}, but only {device.seq} was ever issued"
        return devices.REPLAY, detail, ConflictError(detail, code="DEVICE_FLAGGED")
    if request.seq < device.confirmed_seq:
        detail = f"went back to sequence {request.seq} after confirming {device.confirmed_seq}"
        return devices.REPLAY, detail, ConflictError(detail, code="DEVICE_FLAGGED")
    for license_ in devices.device_licenses(session, device.id):
        tolerance = license_.options.get("fingerprint_tolerance") or {}
        if not fingerprint_matches(device.fingerprint, request.fingerprint, tolerance):
            detail = "the same device key was presented from different hardware"
            error = PermissionDeniedError(
                detail + "; the vendor was told", code="FINGERPRINT_MISMATCH"
            )
            return devices.CLONE, detail, error
    return None


def _registered(session: Session, ex: Exchange, token: str) -> Device:
    device = devices.lock_device(session, ex.vendor.id, signer_of(token))
    if device is None:
        raise NotFoundError("device", signer_of(token), code="DEVICE_UNKNOWN")
    return device


def _public_key(device: Device) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(device.public_key)


def _bind_ticket(session: Session, ex: Exchange, device: Device, ticket_id: str, vm: bool) -> None:
    on_ticket = select(License.template_id).where(
        License.ticket_id == ticket_id, License.delivery == "device"
    )
    templates = set(session.scalars(on_ticket.distinct()))
    if not templates:
        raise ConflictError("this ticket holds no licenses for devices", code="WRONG_DELIVERY")
    held = set(session.scalars(on_ticket.where(License.device_id == device.id).distinct()))
    for template_id in sorted(templates - held):
        if vm and session.get_one(Template, template_id).options.get("vm_policy") == "deny":
            raise VmNotAllowedError("this license may not run in a virtual machine or container")
        if _claim_one(session, ex, device, ticket_id, template_id):
            held.add(template_id)
    if not held:
        raise ConflictError(
            "every license of this ticket is in use on other devices", code="NO_LICENSE_AVAILABLE"
        )


def _claim_one(
    session: Session, ex: Exchange, device: Device, ticket_id: str, template_id: str
) -> bool:
    """Bind one free license of the group: pick a candidate (skipping rows another
    transaction holds), then a conditional update that only succeeds if still free."""
    live = (License.valid_until.is_(None)) | (License.valid_until > ex.now)
    candidate = session.scalar(
        select(License)
        .where(
            License.ticket_id == ticket_id,
            License.template_id == template_id,
            License.state.in_(_BINDABLE),
            License.device_id.is_(None),
            live,
        )
        .limit(1)  # any free one will do; no ORDER BY, so the index scan stops early
        .with_for_update(skip_locked=True)
    )
    if candidate is None:
        return False
    claimed = session.execute(
        update(License)
        .where(
            License.id == candidate.id, License.device_id.is_(None), License.state.in_(_BINDABLE)
        )
        .values(
            state=LicenseState.ACTIVATED.value,
            device_id=device.id,
            version=License.version + 1,
            updated_at=ex.now,
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.refresh(candidate)
    _start_validity(candidate, ex.now)
    record(
        session,
        ex.actor(device.key_id),
        "license.activated",
        "license",
        candidate.id,
        after={"state": candidate.state, "device_id": device.id},
    )
    return True


def _start_validity(license_: License, now: datetime) -> None:
    if license_.activated_at is None:
        license_.activated_at = now
        validity = license_.options.get("validity") or {}
        if validity.get("kind") == "days_from_activation" and license_.valid_until is None:
            license_.valid_until = now + timedelta(days=int(validity["days"]))


def _usable_licenses(session: Session, device: Device, now: datetime) -> list[License]:
    return [
        item
        for item in devices.device_licenses(session, device.id)
        if item.state == LicenseState.ACTIVATED
        and (item.valid_until is None or item.valid_until > now)
    ]


def _lease_due(device: Device, current: list[License], now: datetime) -> bool:
    if not current or device.lease_renewed_at is None:
        return bool(current)
    refresh = min(int(item.options.get("refresh_days", 7)) for item in current)
    return now >= device.lease_renewed_at + timedelta(days=refresh)


def _confirm_online(session: Session, device: Device, request: DeviceRequest) -> None:
    """An online request that shows the state issued at its seq confirms that update."""
    issued = session.scalar(
        select(DeviceUpdate).where(
            DeviceUpdate.device_id == device.id, DeviceUpdate.seq == request.seq
        )
    )
    if issued is not None and issued.state == request.state:
        device.confirmed_seq = max(device.confirmed_seq, issued.seq)


def _issue(session: Session, ex: Exchange, device: Device) -> UpdateIssued:
    current = _usable_licenses(session, device, ex.now)
    previous = (
        session.scalar(
            select(DeviceUpdate.license_ids)
            .where(DeviceUpdate.device_id == device.id)
            .order_by(DeviceUpdate.seq.desc())
            .limit(1)
        )
        or []
    )
    device.seq += 1
    device.lease_renewed_at = ex.now
    token, state = build_update(
        session,
        ex.signer,
        ex.master,
        ex.vendor.slug,
        device,
        current,
        removed=sorted(set(previous) - {item.id for item in current}),
        now=ex.now,
    )
    session.add(
        DeviceUpdate(
            device_id=device.id,
            seq=device.seq,
            state=state,
            license_ids=[item.id for item in current],
            issued_at=ex.now,
        )
    )
    session.flush()
    return UpdateIssued(token, device.seq, state)


def _check_transfer_limit(session: Session, license_: License, now: datetime) -> None:
    limit = license_.options.get("transfer_limit")
    if not limit:
        return
    since = now - timedelta(days=int(limit["period_days"]))
    used = (
        session.scalar(
            select(func.count())
            .select_from(LicenseReturn)
            .where(LicenseReturn.license_id == license_.id, LicenseReturn.returned_at >= since)
        )
        or 0
    )
    if used >= int(limit["returns"]):
        raise ConflictError(
            f"this license was already moved {used} times in the last {limit['period_days']} days",
            code="TRANSFER_LIMIT_REACHED",
            returns=int(limit["returns"]),
            period_days=int(limit["period_days"]),
        )
