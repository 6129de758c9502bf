"""The read-only answer to a conditional sync of a device that is already current.

Most syncs change nothing: the device holds the state the server last issued, has
confirmed it, presents the same fingerprint, and its leases need no renewal yet. Such a
sync can be answered 304 from one read, without the write transaction, the device row
lock and the audit machinery of :func:`licentia.server.activation.services.sync`.

The shortcut answers only when the full sync would answer 304 *and write nothing that
matters*; in every other case it returns None and the caller runs the full sync, which
then records, flags or refuses exactly as before. In particular:

- replay checks: the request's ``seq`` must equal the last issued sequence, so neither
  "higher than ever issued" nor "below what was confirmed" can hold; if that update
  is not confirmed yet, the request must show exactly the state issued with it (then
  it confirms it, as an online request does);
- clone checks: the presented fingerprint and VM flag must equal the recorded ones,
  so the tolerance check cannot fail and there is nothing new to record;
- the device must be active (not blacklisted) and carry no open flag;
- the container state hash must match and no lease may be due for renewal.

What the full sync would still write is the confirmation of the last update and
``last_seen_at`` (kept to the minute): when ``confirms`` or ``seen_due`` say so, the
caller records them with :func:`licentia.server.devices.services.record_visit`, one
conditional update. Reading the device without its lock is safe because the answer is
what the full sync would have answered had it run just before any concurrent change:
a 304 only says "what you hold was current", and the confirmation only ever moves
``confirmed_seq`` up to a ``seq`` that is still the device's last.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, exists, select
from sqlalchemy.engine import Row

from licentia.domain.licenses import LicenseState
from licentia.domain.templates import StoredOptions
from licentia.formats.device import state_hash
from licentia.server.activation.messages import DeviceRequest
from licentia.server.activation.services import SEEN_GRANULARITY, NotModified, lease_due
from licentia.server.db.core import CoreConnection
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device, DeviceFlag, DeviceUpdate
from licentia.server.licenses.models import License
from licentia.server.tenancy.models import Vendor


@dataclass(frozen=True)
class Unchanged(NotModified):
    """A 304 answered from a read; ``seen_due`` asks the caller to record the visit."""

    device_id: str
    confirms: int | None
    seen_due: bool

    @property
    def needs_write(self) -> bool:
        return self.confirms is not None or self.seen_due


def check_unchanged(
    reader: CoreConnection, vendor_slug: str, request: DeviceRequest, now: datetime
) -> Unchanged | None:
    """``Unchanged`` if the device provably holds the current state and nothing about
    this sync needs recording but ``last_seen_at``; None if the full sync must run.

    Reads only (one statement): safe on a connection outside any transaction.
    """
    found = reader.execute(_DEVICE_AND_LICENSES, {"slug": vendor_slug, "key_id": request.device_id})
    rows = found.all()
    if not rows or not _current(rows[0], request):
        return None
    current = [row for row in rows if row.license_id is not None and _usable(row, now)]
    state = state_hash((row.license_id, row.version) for row in current)
    renewed_at = rows[0].lease_renewed_at
    refresh = [_refresh_days(row.options) for row in current]
    if request.state != state or lease_due(renewed_at, refresh, now):
        return None
    device, seen = rows[0], rows[0].last_seen_at
    confirms = None if device.confirmed_seq == device.seq else device.seq
    seen_due = seen is None or now - seen >= SEEN_GRANULARITY
    return Unchanged(state, device.id, confirms, seen_due)


def _device_and_licenses() -> Select[Any]:
    """The device (with whether it holds an open flag and the state of its last update),
    one row per license it holds.

    Built once, in Core over the tables: this is the whole database work of most syncs,
    and neither building the statement nor the ORM's result processing is free.
    """
    device, flag, license_, vendor, issued = (
        Device.__table__.c,
        DeviceFlag.__table__.c,
        License.__table__.c,
        Vendor.__table__.c,
        DeviceUpdate.__table__.c,
    )
    flagged = exists().where(flag.device_id == device.id, flag.cleared_at.is_(None))
    return (
        select(
            device.id,
            device.status,
            device.seq,
            device.confirmed_seq,
            device.fingerprint,
            device.vm,
            device.lease_renewed_at,
            device.last_seen_at,
            flagged.label("flagged"),
            issued.state.label("issued_state"),
            license_.id.label("license_id"),
            license_.version,
            license_.state,
            license_.valid_until,
            license_.options,
        )
        .select_from(Device.__table__)
        .join(Vendor.__table__, vendor.id == device.vendor_id)
        .outerjoin(
            DeviceUpdate.__table__, (issued.device_id == device.id) & (issued.seq == device.seq)
        )
        .outerjoin(License.__table__, license_.device_id == device.id)
        .where(vendor.slug == bindparam("slug"), device.key_id == bindparam("key_id"))
    )


_DEVICE_AND_LICENSES = _device_and_licenses()


def _current(device: Row[Any], request: DeviceRequest) -> bool:
    return (
        device.status == devices.ACTIVE
        and not device.flagged
        and request.seq == device.seq
        and (device.confirmed_seq == device.seq or device.issued_state == request.state)
        and request.fingerprint == device.fingerprint
        and request.vm == device.vm
    )


def _usable(row: Row[Any], now: datetime) -> bool:
    return row.state == LicenseState.ACTIVATED and (
        row.valid_until is None or row.valid_until > now
    )


def _refresh_days(options: dict[str, Any] | None) -> int:
    return StoredOptions(options).refresh_days
