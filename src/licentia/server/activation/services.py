"""Online and file-based activation, sync, receipts and returns (docs/device-protocol.md).

Every entry point locks the device row first, so two requests of one device run one
after the other, and binds licenses with a conditional update, so that however many
devices race for a ticket, a license goes to exactly one of them.

Suspicions (clone, replay, manipulation) are recorded *and* refused: the service
returns a ``Refused`` outcome instead of raising, so the caller commits the flag
before it answers with the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from licentia.domain.errors import ConflictError, NotFoundError
from licentia.domain.licenses import LicenseState
from licentia.domain.templates import StoredOptions
from licentia.formats.device import state_hash
from licentia.formats.document_types import RECEIPT_TYP, RETURN_TYP
from licentia.server.activation.churn import count_churn, ensure_churn_left
from licentia.server.activation.documents import build_update
from licentia.server.activation.exchange import SEEN_GRANULARITY as SEEN_GRANULARITY
from licentia.server.activation.exchange import Exchange as Exchange
from licentia.server.activation.exchange import NotModified as NotModified
from licentia.server.activation.exchange import Refused as Refused
from licentia.server.activation.exchange import UpdateIssued as UpdateIssued
from licentia.server.activation.exchange import VmNotAllowedError as VmNotAllowedError
from licentia.server.activation.exchange import refuse, suspicion, usable
from licentia.server.activation.messages import DeviceRequest, read_signed_by, signer_of
from licentia.server.activation.online import activate as activate
from licentia.server.activation.transfers import TransferAllowance, check_transfer_allowed
from licentia.server.audit.services import record
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device, DeviceUpdate, LicenseReturn
from licentia.server.licenses.models import License


def sync(
    session: Session, ex: Exchange, request: DeviceRequest, *, conditional: bool
) -> UpdateIssued | NotModified | Refused:
    """Bring the device up to date: renewed leases and every change since its last sync.

    With ``conditional``, answers NotModified when the device already holds the
    current state and its leases need no renewal yet. A blacklisted device gets an
    update that removes all its licenses.
    """
    device = _device(session, ex, request)
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


@dataclass(frozen=True)
class ReturnPreview:
    """What a return proof would do, read before it is done: the license, the
    computer that gives it up, whether that was done already, and the moves left."""

    license_id: str
    product_code: str
    device_key_id: str
    done_already: bool
    allowance: TransferAllowance | None


def preview_return(session: Session, ex: Exchange, token: str) -> ReturnPreview:
    """Check a return proof as :func:`return_license` would, and change nothing.

    Raises what :func:`return_license` raises, ``TRANSFER_LIMIT_REACHED`` included.
    """
    device, proof_id, license_ = _returning(session, ex, token, lock=False)
    done = _returned_already(session, proof_id)
    allowance = None if done else _check_move(session, device, license_, ex.now)
    return ReturnPreview(license_.id, license_.product_code, device.key_id, done, allowance)


def return_license(session: Session, ex: Exchange, token: str) -> License:
    """Make a license the device gave up available again.

    Idempotent per proof. Raises ``LICENSE_NOT_ON_DEVICE``, ``TRANSFER_LIMIT_REACHED``
    and ``CHURN_LIMIT_REACHED`` (the license then stays on the device).
    """
    device, proof_id, license_ = _returning(session, ex, token, lock=True)
    if _returned_already(session, proof_id):
        return license_
    _check_move(session, device, license_, ex.now)
    churn = count_churn(session.connection(), license_.id, license_.options, ex.now)
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
        after={"state": license_.state, "device_id": None}
        | ({"churn": churn.as_audited()} if churn else {}),
    )
    return license_


# --- steps -----------------------------------------------------------------------------


def _device(session: Session, ex: Exchange, request: DeviceRequest) -> Device | Refused:
    """The registered device, locked, checked for suspicions and noted as seen."""
    device = devices.lock_device(session, ex.vendor.id, request.device_id)
    if device is None:
        raise NotFoundError("device", request.device_id, code="DEVICE_UNKNOWN")
    suspected = suspicion(device, devices.device_licenses(session, device.id), request)
    if suspected is not None:
        return refuse(session, ex, device.id, suspected)
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


def _returning(
    session: Session, ex: Exchange, token: str, *, lock: bool
) -> tuple[Device, str, License]:
    """The device that signed a return proof, the proof's id and the license it gives
    up (locked with ``lock``). Raises DEVICE_UNKNOWN, SIGNATURE_INVALID, NOT_FOUND."""
    device = _registered(session, ex, token, lock=lock)
    claims = read_signed_by(
        token, _public_key(device), typ=RETURN_TYP, vendor_slug=ex.vendor.slug, now=ex.now
    )
    proof_id, license_id = str(claims.get("jti")), str(claims.get("license"))
    query = select(License).where(License.id == license_id, License.vendor_id == ex.vendor.id)
    license_ = session.scalar(query.with_for_update() if lock else query)
    if license_ is None:
        raise NotFoundError("license", license_id)
    return device, proof_id, license_


def _returned_already(session: Session, proof_id: str) -> bool:
    return (
        session.scalar(select(LicenseReturn.id).where(LicenseReturn.proof_id == proof_id))
        is not None
    )


def _check_move(
    session: Session, device: Device, license_: License, now: datetime
) -> TransferAllowance | None:
    if license_.device_id != device.id:
        raise ConflictError("this license is not on this device", code="LICENSE_NOT_ON_DEVICE")
    allowance = check_transfer_allowed(session, license_, now)
    ensure_churn_left(license_, now)
    return allowance


def _registered(session: Session, ex: Exchange, token: str, *, lock: bool = True) -> Device:
    find = devices.lock_device if lock else devices.find_device
    device = find(session, ex.vendor.id, signer_of(token))
    if device is None:
        raise NotFoundError("device", signer_of(token), code="DEVICE_UNKNOWN")
    return device


def _public_key(device: Device) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(device.public_key)


def _usable_licenses(session: Session, device: Device, now: datetime) -> list[License]:
    return [item for item in devices.device_licenses(session, device.id) if usable(item, now)]


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
