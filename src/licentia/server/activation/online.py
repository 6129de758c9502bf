"""Online activation: a device presents a ticket code and gets its licenses.

The rules are those the activation always had; the statements are few and built once
(:mod:`licentia.server.activation._binding`): a new device costs one read, one claim
and one record, then the COMMIT, which carries the audit events; a device seen
before, one read more (the licenses it holds). Rare answers (a flag to record, a
blocked or flagged device to explain) use the ORM as every other call does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from licentia.domain.errors import ConflictError, LicentiaError, NotFoundError
from licentia.domain.ids import new_id
from licentia.domain.licenses import LicenseState
from licentia.domain.templates import StoredOptions
from licentia.server.activation import _binding
from licentia.server.activation._binding import DeviceLicense, Found, KnownDevice, Presented
from licentia.server.activation.churn import churn_limit_reached, count_churn
from licentia.server.activation.documents import sign_update
from licentia.server.activation.exchange import (
    SEEN_GRANULARITY,
    Exchange,
    Refused,
    UpdateIssued,
    VmNotAllowedError,
    refuse,
    suspicion,
    usable,
)
from licentia.server.activation.messages import DeviceRequest
from licentia.server.audit.services import record
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.services import count_activations
from licentia.server.observability.metrics import ACTIVATIONS
from licentia.server.observability.tallies import tally
from licentia.server.orders.services import ticket_lookup_hash


def activate(session: Session, ex: Exchange, request: DeviceRequest) -> UpdateIssued | Refused:
    """Bind one license per template of the ticket to the device and issue an update.

    Idempotent: a device that already holds a license of the ticket's template keeps
    it and takes no other. Raises TICKET_CODE_INVALID / TICKET_NOT_FOUND,
    ``NO_LICENSE_AVAILABLE``, ``EXPIRED``, ``CHURN_LIMIT_REACHED``, ``WRONG_DELIVERY``,
    ``VM_NOT_ALLOWED``, ``DEVICE_BLACKLISTED``, ``DEVICE_FLAGGED``. A suspicious request
    flags the device and answers ``Refused``.
    """
    if request.ticket is None:
        raise ConflictError("an activation needs a ticket code", code="TICKET_REQUIRED")
    code_hash, typo = _code_hash(ex.master, request.ticket)
    connection = session.connection()
    found = _binding.read(connection, ex.vendor_slug, request.device_id, code_hash)
    if found.vendor_id is None:
        raise NotFoundError("vendor", ex.vendor_slug)  # as get_vendor_by_slug says it
    ex.found_vendor(found.vendor_id)
    if found.signing_key is not None:
        ex.use_key(*found.signing_key)
    known, held = found.device, list[DeviceLicense]()
    if known is not None:
        held = _binding.device_licenses(connection, known.id)
        suspected = suspicion(known, held, request)
        if suspected is not None:
            return refuse(session, ex, known.id, suspected)
    # seq counts the updates issued: a device at 0 was registered just now (an
    # activation that issues nothing rolls back), so it has no flag and no license yet.
    never_issued = known is None or known.seq == 0
    if known is not None and not never_issued:
        _ensure_usable(session, known)
    wanted = _wanted_templates(found, typo, request.vm, never_issued=never_issued)
    device = _presented(known, request, ex.now)
    kept = [item for item in held if usable(item, ex.now)]
    ticket_id = str(found.ticket_id)
    claimed, recorded = _binding.claim(
        connection, ex.vendor.id, device, known is None, ticket_id, wanted, kept, ex.now
    )
    if not claimed and (never_issued or not any(t.held for t in found.templates)):
        raise _none_available(connection, ticket_id, ex.now)
    current = kept + _bound(session, ex, device, claimed)
    last_issued = [] if known is None else known.last_issued
    return _issue(connection, ex, device, current, last_issued, recorded)


def _code_hash(master: MasterKey, code: str) -> tuple[str | None, LicentiaError | None]:
    """The ticket's lookup hash, or the error a typo in the code raises (later, where
    an activation always raised it)."""
    try:
        return ticket_lookup_hash(master, code), None
    except LicentiaError as error:
        return None, error


def _ensure_usable(session: Session, known: KnownDevice) -> None:
    """Raises as ``devices.ensure_usable`` (asked only when it would raise)."""
    if known.status == devices.BLACKLISTED or known.flagged:
        devices.ensure_usable(session, session.get_one(Device, known.id))


def _wanted_templates(
    found: Found, typo: LicentiaError | None, vm: bool, *, never_issued: bool
) -> list[_binding.TicketTemplate]:
    """The ticket's templates the device holds no license of yet; raises for an
    unknown ticket, a ticket without device licenses, or a VM a template refuses."""
    if typo is not None:
        raise typo
    if found.ticket_id is None:
        raise NotFoundError("ticket", "with this code", code="TICKET_NOT_FOUND")
    if not found.templates:
        raise ConflictError("this ticket holds no licenses for devices", code="WRONG_DELIVERY")
    wanted = [t for t in found.templates if never_issued or not t.held]
    if vm and not all(StoredOptions(t.options).vm_allowed for t in wanted):
        raise VmNotAllowedError("this license may not run in a virtual machine or container")
    return wanted


def _none_available(connection: Connection, ticket_id: str, now: datetime) -> ConflictError:
    """Why no license of the ticket could be bound: the free ones have expired, or
    every one is in use elsewhere."""
    if _binding.has_expired_free(connection, ticket_id, now):
        return ConflictError(
            "the licenses of this ticket that are not in use have expired", code="EXPIRED"
        )
    churned = _binding.churned_free(connection, ticket_id, now)
    if churned is not None:
        until, options = churned
        return churn_limit_reached(StoredOptions(options).churn_limit or {}, until)
    return ConflictError(
        "every license of this ticket is in use on other devices", code="NO_LICENSE_AVAILABLE"
    )


def _presented(known: KnownDevice | None, request: DeviceRequest, now: datetime) -> Presented:
    """The device's row after this activation: a new one (``last_seen_at`` is set when
    it is next seen), or the known one with what it presented (``last_seen_at`` kept
    to the minute) at its next ``seq``."""
    if known is None:
        return Presented(
            id=new_id(),
            key_id=request.device_id,
            public_key=request.public_key,
            encryption_key=request.encryption_key,
            status=devices.ACTIVE,
            seq=1,
            fingerprint=request.fingerprint,
            vm=request.vm,
            last_seen_at=None,
        )
    seen = known.last_seen_at
    if seen is None or now - seen >= SEEN_GRANULARITY:
        seen = now
    return Presented(
        id=known.id,
        key_id=request.device_id,
        public_key=request.public_key,
        encryption_key=known.encryption_key,
        status=known.status,
        seq=known.seq + 1,
        fingerprint=request.fingerprint,
        vm=request.vm,
        last_seen_at=seen,
    )


def _bound(
    session: Session, ex: Exchange, device: Presented, claimed: list[_binding.Claimed]
) -> list[DeviceLicense]:
    """The licenses just claimed as the update carries them, each audited; a license
    valid for N days from its first activation starts counting now."""
    bound, started = [], {}
    for item in claimed:
        license_ = item.license
        validity = StoredOptions(license_.options).validity
        first = item.activated_at == ex.now and license_.valid_until is None
        if first and validity.get("kind") == "days_from_activation":
            until = ex.now + timedelta(days=int(validity["days"]))
            license_ = replace(license_, valid_until=until)
            started[license_.id] = until
        bound.append(license_)
        churn = count_churn(session.connection(), license_.id, license_.options, ex.now)
        after = {"state": LicenseState.ACTIVATED.value, "device_id": device.id}
        tally(session, ACTIVATIONS, ex.vendor_slug, license_.product_code, "device")
        record(
            session,
            ex.actor(device.key_id),
            "license.activated",
            "license",
            license_.id,
            after=after | ({"churn": churn.as_audited()} if churn else {}),
        )
    count_activations(session, ex.vendor.id, ex.now, len(claimed))
    _binding.start_validity(session.connection(), started)
    return bound


def _issue(
    connection: Connection,
    ex: Exchange,
    device: Presented,
    current: list[DeviceLicense],
    last_issued: list[str],
    recorded: str | None,
) -> UpdateIssued:
    """Sign the update at ``device.seq`` (its row says so already): ``current`` and
    the removal of what the last update held and it lacks; record it unless the
    claim did (``recorded``, the state it recorded, must then be this one)."""
    current = sorted(current, key=lambda item: item.id)
    removed = sorted(set(last_issued) - {item.id for item in current})
    sealed = [(item, item.secret_encrypted) for item in current]
    token, state = sign_update(
        ex.signer, ex.master, ex.vendor.slug, device, sealed, removed=removed, now=ex.now
    )
    if recorded is None:
        license_ids = [item.id for item in current]
        _binding.record_update(connection, device.id, device.seq, state, license_ids, ex.now)
    elif recorded != state:  # receipts and syncs compare with the recorded state
        raise AssertionError(f"the update was recorded with state {recorded}, not {state}")
    return UpdateIssued(token, device.seq, state)
