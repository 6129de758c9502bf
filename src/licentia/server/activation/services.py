"""Online and file-based activation, sync, receipts and returns (docs/device-protocol.md).

Every entry point locks the device row first, so two requests of one device run one
after the other, and binds licenses with a conditional update, so that however many
devices race for a ticket, a license goes to exactly one of them.

Suspicions (clone, replay, manipulation) are recorded *and* refused: the service
returns a ``Refused`` outcome instead of raising, so the caller commits the flag
before it answers with the error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import ColumnElement, ScalarSelect, func, insert, literal, select, update
from sqlalchemy.orm import Session, lazyload

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import (
    ConflictError,
    LicentiaError,
    NotFoundError,
    PermissionDeniedError,
)
from licentia.domain.licenses import LicenseState
from licentia.domain.templates import StoredOptions
from licentia.formats.device import state_hash
from licentia.formats.document_types import RECEIPT_TYP, RETURN_TYP
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

SEEN_GRANULARITY = timedelta(minutes=1)
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
        return Actor(ActorKind.DEVICE, device_key_id, self.vendor.id, frozenset(), self.source_ip)


def activate(session: Session, ex: Exchange, request: DeviceRequest) -> UpdateIssued | Refused:
    """Bind one license per template of the ticket to the device and issue an update.

    Idempotent: a device that already holds a license of the ticket's template keeps
    it and takes no other. Raises TICKET_CODE_INVALID / TICKET_NOT_FOUND,
    ``NO_LICENSE_AVAILABLE``, ``EXPIRED``, ``WRONG_DELIVERY``, ``VM_NOT_ALLOWED``,
    ``DEVICE_BLACKLISTED``, ``DEVICE_FLAGGED``.
    """
    if request.ticket is None:
        raise ConflictError("an activation needs a ticket code", code="TICKET_REQUIRED")
    device = _device(session, ex, request, create=True)
    if isinstance(device, Refused):
        return device
    # seq counts the updates issued: a device at 0 was registered just now (an
    # activation that issues nothing rolls back), so it has no flag and no license yet.
    never_issued = device.seq == 0
    if not never_issued:
        devices.ensure_usable(session, device)
    ticket = find_ticket(session, ex.vendor.id, ex.master, request.ticket)
    _bind_ticket(session, ex, device, ticket.id, request.vm, holds_none=never_issued)
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
    refresh = [_refresh_days(item) for item in current]
    if conditional and fresh and not lease_due(device.lease_renewed_at, refresh, ex.now):
        return NotModified(state)
    return _issue(session, ex, device, current)


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
    if device.last_seen_at is None or now - device.last_seen_at >= SEEN_GRANULARITY:
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
        tolerance = StoredOptions(license_.options).fingerprint_tolerance
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


def _bind_ticket(
    session: Session, ex: Exchange, device: Device, ticket_id: str, vm: bool, *, holds_none: bool
) -> None:
    on_ticket = select(License.template_id).where(
        License.ticket_id == ticket_id, License.delivery == "device"
    )
    templates = _ticket_templates(session, ticket_id)
    if not templates:
        raise ConflictError("this ticket holds no licenses for devices", code="WRONG_DELIVERY")
    held: set[str] = (
        set()
        if holds_none
        else set(session.scalars(on_ticket.where(License.device_id == device.id).distinct()))
    )
    for template_id in sorted(templates - held):
        if vm and not StoredOptions(_template(session, template_id).options).vm_allowed:
            raise VmNotAllowedError("this license may not run in a virtual machine or container")
        if _claim_one(session, ex, device, ticket_id, template_id):
            held.add(template_id)
    if not held:
        raise _none_available(session, ticket_id, ex.now)


def _none_available(session: Session, ticket_id: str, now: datetime) -> ConflictError:
    """Why no license of the ticket could be bound: the free ones have expired, or
    every one is in use elsewhere."""
    expired = session.scalar(
        select(License.id)
        .where(
            License.ticket_id == ticket_id,
            License.delivery == "device",
            License.state.in_(_BINDABLE),
            License.device_id.is_(None),
            License.valid_until <= now,
        )
        .limit(1)
    )
    if expired is not None:
        return ConflictError(
            "the licenses of this ticket that are not in use have expired", code="EXPIRED"
        )
    return ConflictError(
        "every license of this ticket is in use on other devices", code="NO_LICENSE_AVAILABLE"
    )


def _ticket_templates(session: Session, ticket_id: str) -> set[str]:
    """The templates of the ticket's device licenses, one index probe per template (a
    loose index scan written as a recursive query): a ticket of thousands of licenses
    made a plain DISTINCT read all of them on every activation."""

    def lowest(*after: ColumnElement[bool]) -> ScalarSelect[str]:
        return (
            select(License.template_id)
            .where(License.ticket_id == ticket_id, License.delivery == "device", *after)
            .order_by(License.template_id)
            .limit(1)
            .scalar_subquery()
        )

    found = select(lowest().label("template_id")).cte("found", recursive=True)
    previous = found.alias("previous")
    following = lowest(License.template_id > previous.c.template_id)
    found = found.union_all(select(following).where(previous.c.template_id.is_not(None)))
    return set(session.scalars(select(found.c.template_id).where(found.c.template_id.is_not(None))))


def _template(session: Session, template_id: str) -> Template:
    # Only the template's own columns are read here: not its product and features.
    return session.get_one(Template, template_id, options=[lazyload("*")])


def _claim_one(
    session: Session, ex: Exchange, device: Device, ticket_id: str, template_id: str
) -> bool:
    """Bind one free license of the group in one statement: pick a candidate (skipping
    rows another transaction holds) and update it only if it is still free, so that
    however many devices race, a license goes to exactly one of them."""
    live = (License.valid_until.is_(None)) | (License.valid_until > ex.now)
    pick = (
        select(License.id)
        .where(
            License.ticket_id == ticket_id,
            License.template_id == template_id,
            License.state.in_(_BINDABLE),
            License.device_id.is_(None),
            live,
        )
        .limit(1)  # any free one will do; no ORDER BY, so the index scan stops early
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    now = literal(ex.now, type_=License.__table__.c.activated_at.type)
    claimed = session.execute(
        update(License)
        .where(License.id == pick, License.device_id.is_(None), License.state.in_(_BINDABLE))
        .values(
            state=LicenseState.ACTIVATED.value,
            device_id=device.id,
            version=License.version + 1,
            updated_at=ex.now,
            activated_at=func.coalesce(License.activated_at, now),
        )
        .returning(License.id, License.activated_at, License.valid_until, License.options)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if claimed is None:
        return False
    license_id, activated_at, valid_until, options = claimed
    # activated_at is this transaction's own time only if this is the first activation
    # (RETURNING shows new values, and SQLite cannot return the old one).
    if activated_at == ex.now and valid_until is None:
        _start_validity(session, license_id, options, ex.now)
    record(
        session,
        ex.actor(device.key_id),
        "license.activated",
        "license",
        license_id,
        after={"state": LicenseState.ACTIVATED.value, "device_id": device.id},
    )
    return True


def _start_validity(
    session: Session, license_id: str, options: dict[str, Any], now: datetime
) -> None:
    """A license valid for N days from its first activation starts counting now."""
    validity = StoredOptions(options).validity
    if validity.get("kind") == "days_from_activation":
        session.execute(
            update(License)
            .where(License.id == license_id)
            .values(valid_until=now + timedelta(days=int(validity["days"])))
            .execution_options(synchronize_session=False)
        )


def _usable_licenses(session: Session, device: Device, now: datetime) -> list[License]:
    return [
        item
        for item in devices.device_licenses(session, device.id)
        if item.state == LicenseState.ACTIVATED
        and (item.valid_until is None or item.valid_until > now)
    ]


def lease_due(renewed_at: datetime | None, refresh_days: Sequence[int], now: datetime) -> bool:
    """Whether the leases of licenses with these refresh intervals (days) need renewing:
    never renewed yet, or the shortest interval has passed since the last renewal."""
    if not refresh_days or renewed_at is None:
        return bool(refresh_days)
    return now >= renewed_at + timedelta(days=min(refresh_days))


def _refresh_days(license_: License) -> int:
    return StoredOptions(license_.options).refresh_days


def _confirm_online(session: Session, device: Device, request: DeviceRequest) -> None:
    """An online request that shows the state issued at its seq confirms that update."""
    issued = session.scalar(
        select(DeviceUpdate).where(
            DeviceUpdate.device_id == device.id, DeviceUpdate.seq == request.seq
        )
    )
    if issued is not None and issued.state == request.state:
        device.confirmed_seq = max(device.confirmed_seq, issued.seq)


def _issue(
    session: Session, ex: Exchange, device: Device, current: list[License] | None = None
) -> UpdateIssued:
    """Sign and record the next update: ``current`` (the device's usable licenses, read
    again if not given) and the removal of what the last update held and it lacks."""
    if current is None:
        current = _usable_licenses(session, device, ex.now)
    previous = _last_issued(session, device)
    signer = ex.signer
    device.seq += 1
    device.lease_renewed_at = ex.now
    with session.no_autoflush:  # the device's new seq is written once, just below
        token, state = build_update(
            session,
            signer,
            ex.master,
            ex.vendor.slug,
            device,
            current,
            removed=sorted(set(previous) - {item.id for item in current}),
            now=ex.now,
        )
    session.execute(
        insert(DeviceUpdate).values(
            device_id=device.id,
            seq=device.seq,
            state=state,
            license_ids=[item.id for item in current],
            issued_at=ex.now,
        )
    )
    return UpdateIssued(token, device.seq, state)


def _last_issued(session: Session, device: Device) -> list[str]:
    """The license ids of the last update issued to the device (none before the first)."""
    if device.seq == 0:
        return []
    return (
        session.scalar(
            select(DeviceUpdate.license_ids).where(
                DeviceUpdate.device_id == device.id, DeviceUpdate.seq == device.seq
            )
        )
        or []
    )


def _check_transfer_limit(session: Session, license_: License, now: datetime) -> None:
    limit = StoredOptions(license_.options).transfer_limit
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
