"""Devices: registration, flags, and the vendor's actions (deactivate, blacklist)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, select, update
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import NotFoundError, PermissionDeniedError
from licentia.domain.filters import one_of
from licentia.domain.licenses import LicenseState
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.devices.models import Device, DeviceFlag
from licentia.server.licenses.models import License

ACTIVE, BLACKLISTED = "active", "blacklisted"
CLONE, REPLAY, MANIPULATION = "clone_suspected", "replay_suspected", "manipulation_suspected"
STATUSES = (ACTIVE, BLACKLISTED)
FLAG_KINDS = (CLONE, REPLAY, MANIPULATION)
ANY_FLAG = "any"


class DeviceBlacklistedError(PermissionDeniedError):
    code = "DEVICE_BLACKLISTED"


class DeviceFlaggedError(PermissionDeniedError):
    code = "DEVICE_FLAGGED"


def lock_device(session: Session, vendor_id: str, key_id: str) -> Device | None:
    """The device with this key, locked for the rest of the transaction (or None)."""
    return session.scalar(_by_key(vendor_id, key_id).with_for_update())


def find_device(session: Session, vendor_id: str, key_id: str) -> Device | None:
    """The device with this key (or None), for a read that changes nothing."""
    return session.scalar(_by_key(vendor_id, key_id))


def _by_key(vendor_id: str, key_id: str) -> Select[Device]:
    return select(Device).where(Device.vendor_id == vendor_id, Device.key_id == key_id)


def record_visit(
    session: Session,
    device_id: str,
    now: datetime,
    *,
    seen_granularity: timedelta,
    confirms: int | None = None,
) -> None:
    """Record that the device called at ``now`` (unless ``last_seen_at`` is less than
    ``seen_granularity`` old) and, with ``confirms``, that it holds the update issued at
    that ``seq`` (only while that is still its last one; ``confirmed_seq`` never goes
    down). One conditional update: concurrent visits cannot move anything backwards.
    """
    stale = Device.last_seen_at.is_(None) | (Device.last_seen_at <= now - seen_granularity)
    values: dict[str, Any] = {"last_seen_at": case((stale, now), else_=Device.last_seen_at)}
    if confirms is not None:
        confirmable = (Device.seq == confirms) & (Device.confirmed_seq < confirms)
        values["confirmed_seq"] = case((confirmable, confirms), else_=Device.confirmed_seq)
    session.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class DeviceView:
    """A device as the vendor sees it: its row, its open flags and its licenses."""

    id: str
    key_id: str
    status: str
    seq: int
    confirmed_seq: int
    vm: bool
    flags: list[str]
    license_ids: list[str]
    last_seen_at: datetime | None
    created_at: datetime


def device_view(session: Session, device: Device) -> DeviceView:
    return DeviceView(
        id=device.id,
        key_id=device.key_id,
        status=device.status,
        seq=device.seq,
        confirmed_seq=device.confirmed_seq,
        vm=device.vm,
        flags=[flag.kind for flag in active_flags(session, device.id)],
        license_ids=[item.id for item in device_licenses(session, device.id)],
        last_seen_at=device.last_seen_at,
        created_at=device.created_at,
    )


def active_flags(session: Session, device_id: str) -> list[DeviceFlag]:
    return list(
        session.scalars(
            select(DeviceFlag).where(
                DeviceFlag.device_id == device_id, DeviceFlag.cleared_at.is_(None)
            )
        )
    )


def flag_device(
    session: Session, actor: Actor, device: Device, kind: str, detail: str
) -> DeviceFlag:
    flag = DeviceFlag(vendor_id=device.vendor_id, device_id=device.id, kind=kind, detail=detail)
    session.add(flag)
    session.flush()
    record(
        session,
        actor,
        "device.flagged",
        "device",
        device.id,
        after={"kind": kind, "detail": detail},
    )
    return flag


def ensure_usable(session: Session, device: Device) -> None:
    """Raises DeviceBlacklistedError or DeviceFlaggedError (until the vendor clears it)."""
    if device.status == BLACKLISTED:
        raise DeviceBlacklistedError("this device was blocked by the vendor")
    flags = active_flags(session, device.id)
    if flags:
        raise DeviceFlaggedError(
            f"this device is held for review ({flags[0].kind.replace('_', ' ')}); "
            "contact the vendor's support",
            flags=[f.kind for f in flags],
        )


def device_licenses(session: Session, device_id: str) -> list[License]:
    return list(
        session.scalars(select(License).where(License.device_id == device_id).order_by(License.id))
    )


# --- vendor side -----------------------------------------------------------------------


def get_device(session: Session, actor: Actor, device_id: str, *, lock: bool = False) -> Device:
    query = select(Device).where(Device.id == device_id, Device.vendor_id == _vendor(actor))
    device = session.scalar(query.with_for_update() if lock else query)
    if device is None:
        raise NotFoundError("device", device_id)
    return device


def devices_query(
    actor: Actor, status: str | None = None, *, flag: str | None = None
) -> Select[Device]:
    """The vendor's devices, narrowed to a status and to those an active flag holds
    (of one kind, or ``any``). Raises ValidationError for a value not among those."""
    query = select(Device).where(Device.vendor_id == _vendor(actor))
    if status is not None:
        query = query.where(Device.status == one_of(status, STATUSES, field="status"))
    if flag is not None:
        one_of(flag, (ANY_FLAG, *FLAG_KINDS), field="flag")
        flagged = select(DeviceFlag.id).where(
            DeviceFlag.device_id == Device.id, DeviceFlag.cleared_at.is_(None)
        )
        if flag != ANY_FLAG:
            flagged = flagged.where(DeviceFlag.kind == flag)
        query = query.where(flagged.exists())
    return query


def flags_of(session: Session, device_ids: Sequence[str]) -> dict[str, list[str]]:
    """The active flags of several devices, read in one statement, by device id."""
    found: dict[str, list[str]] = {device_id: [] for device_id in device_ids}
    rows = session.execute(
        select(DeviceFlag.device_id, DeviceFlag.kind)
        .where(DeviceFlag.device_id.in_(list(device_ids)), DeviceFlag.cleared_at.is_(None))
        .order_by(DeviceFlag.id)
    )
    for device_id, kind in rows:
        found[device_id].append(kind)
    return found


def release_licenses(session: Session, actor: Actor, device: Device, now: datetime) -> list[str]:
    """Detach every license from the device; activated ones become ``returned``."""
    released = []
    for license_ in device_licenses(session, device.id):
        before = {"state": license_.state, "device_id": device.id}
        if license_.state == LicenseState.ACTIVATED:
            license_.state = LicenseState.RETURNED.value
        license_.device_id = None
        license_.version += 1
        license_.updated_at = now
        record(
            session,
            actor,
            "license.released",
            "license",
            license_.id,
            before=before,
            after={"state": license_.state, "device_id": None},
        )
        released.append(license_.id)
    return released


def deactivate_device(session: Session, actor: Actor, device_id: str) -> Device:
    """Free the device's licenses (its next sync removes them); it may activate again."""
    device = get_device(session, actor, device_id, lock=True)
    release_licenses(session, actor, device, utcnow())
    record(session, actor, "device.deactivated", "device", device.id)
    return device


def blacklist_device(session: Session, actor: Actor, device_id: str) -> Device:
    """Free its licenses and refuse the device for good; its syncs remove its licenses."""
    device = get_device(session, actor, device_id, lock=True)
    release_licenses(session, actor, device, utcnow())
    before = device.status
    device.status = BLACKLISTED
    record(
        session,
        actor,
        "device.blacklisted",
        "device",
        device.id,
        before={"status": before},
        after={"status": BLACKLISTED},
    )
    return device


def clear_flags(session: Session, actor: Actor, device_id: str) -> Device:
    """The vendor reviewed the device: its flags no longer hold it."""
    device = get_device(session, actor, device_id, lock=True)
    now = utcnow()
    for flag in active_flags(session, device.id):
        flag.cleared_at = now
    record(session, actor, "device.flags_cleared", "device", device.id)
    return device


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "device calls need a vendor-scoped actor"
    return actor.vendor_id
