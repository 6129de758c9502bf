"""The statements of an online activation: one read, one claim, one record.

The device, the ticket, the ticket's templates and the vendor's signing key come
from ONE read, which also locks the device row; a device that was seen before adds
one read of the licenses it holds (docs/benchmarks.md has what this saved). The
claim of one free license per wanted template, together with the device's new row (or
its moved ``seq``), is ONE statement on PostgreSQL (a data-modifying ``WITH``; the
templates as an array, each free license picked with ``FOR UPDATE SKIP LOCKED``); on
SQLite, which has neither, the same rows are written one statement each. The update
issued is one INSERT; the audit events go out with the COMMIT (``audit.services``).

Every statement is built once, at import: SQLAlchemy then reuses its compiled form.
Rows come back as plain values (:class:`KnownDevice`, :class:`TicketTemplate`,
:class:`DeviceLicense`); nothing here decides anything: the rules are the caller's
(:func:`licentia.server.activation.services.activate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    Text,
    Update,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.engine import Row

from licentia.domain.ids import new_id
from licentia.domain.licenses import LicenseState
from licentia.server.catalog.models import Template
from licentia.server.devices.models import Device, DeviceFlag, DeviceUpdate
from licentia.server.devices.services import ACTIVE
from licentia.server.keys.models import SigningKey
from licentia.server.keys.services import CURRENT
from licentia.server.licenses.models import License
from licentia.server.orders.models import Ticket
from licentia.server.tenancy.models import Vendor

_DEVICE, _FLAG, _ISSUED = Device.__table__.c, DeviceFlag.__table__.c, DeviceUpdate.__table__.c
_LICENSE, _TICKET = License.__table__.c, Ticket.__table__.c
_TEMPLATE, _KEY, _VENDOR = Template.__table__.c, SigningKey.__table__.c, Vendor.__table__.c
ACTIVATED = LicenseState.ACTIVATED.value
# Rendered as literals: an expanding IN would be rendered again on every call.
_BINDABLE: tuple[ColumnElement[str], ...] = (
    literal_column(f"'{LicenseState.AVAILABLE.value}'"),
    literal_column(f"'{LicenseState.RETURNED.value}'"),
)


@dataclass(frozen=True)
class KnownDevice:
    """A device registered before, as the read found (and locked) it."""

    id: str
    status: str
    seq: int
    confirmed_seq: int
    fingerprint: dict[str, str]
    vm: bool
    last_seen_at: datetime | None
    encryption_key: bytes
    flagged: bool  # it has a flag the vendor has not cleared
    last_issued: list[str]  # the license ids of the last update issued to it


@dataclass(frozen=True)
class TicketTemplate:
    """A template of the ticket's device licenses."""

    id: str
    options: dict[str, Any]  # the template's options now (not a license's frozen copy)
    secret_encrypted: bytes | None
    held: bool  # the device holds a license of it from this ticket


@dataclass(frozen=True)
class Found:
    """What the read found: any of it may be missing (the caller says what that means)."""

    vendor_id: str | None
    device: KnownDevice | None
    ticket_id: str | None
    templates: list[TicketTemplate]
    signing_key: tuple[str, bytes] | None  # the vendor's current kid and sealed key


@dataclass(frozen=True)
class DeviceLicense:
    """A license as the device's update carries it (``Documented``), with its
    template's sealed secret data."""

    id: str
    template_id: str
    state: str
    version: int
    issued_at: datetime
    valid_until: datetime | None
    maintenance_until: datetime | None
    product_code: str
    features: list[str]
    options: dict[str, Any]
    secret_encrypted: bytes | None


@dataclass(frozen=True)
class Claimed:
    """A license this activation bound, and when it was first activated (the time of
    this activation if it never was before)."""

    license: DeviceLicense
    activated_at: datetime


@dataclass(frozen=True)
class Presented:
    """The device's row as this activation leaves it (new, or moved on to its next
    update), which is also what the update is addressed to (``documents.Recipient``)."""

    id: str
    key_id: str
    public_key: bytes
    encryption_key: bytes
    status: str
    seq: int
    fingerprint: dict[str, str]
    vm: bool
    last_seen_at: datetime | None


# --- the read ------------------------------------------------------------------------


def read(connection: Connection, vendor_slug: str, key_id: str, code_hash: str | None) -> Found:
    """The vendor with ``vendor_slug``, its device with ``key_id`` (locked until the
    transaction ends), its ticket whose code hashes to ``code_hash`` and the ticket's
    device templates, and its current signing key."""
    parameters = {"vendor_slug": vendor_slug, "key_id": key_id, "code_hash": code_hash}
    rows = connection.execute(_READ, parameters).all()
    if _waited_for_the_lock(rows[0]):
        rows = connection.execute(_READ, parameters).all()
    first = rows[0]
    key = (first.kid, first.private_key_encrypted) if first.kid is not None else None
    templates = [
        TicketTemplate(row.template_id, row.template_options, row.secret_encrypted, row.held)
        for row in rows
        if row.template_id is not None
    ]
    return Found(first.vendor_id, _known_device(first), first.ticket_id, templates, key)


def _waited_for_the_lock(row: Row[Any]) -> bool:
    """Whether the read waited for another transaction's lock on the device and so saw
    everything but the device's own row as it was before that wait: PostgreSQL's READ
    COMMITTED reads the locked row again, not the rest of the statement. The other
    transaction issued the device an update (its ``seq`` moved on) whose record the
    read then misses; read again, with the lock held, everything is as it is now."""
    return row.device_id is not None and row.seq > 0 and row.last_issued is None


def _known_device(row: Row[Any]) -> KnownDevice | None:
    if row.device_id is None:
        return None
    return KnownDevice(
        id=row.device_id,
        status=row.status,
        seq=row.seq,
        confirmed_seq=row.confirmed_seq,
        fingerprint=row.fingerprint,
        vm=row.vm,
        last_seen_at=row.last_seen_at,
        encryption_key=row.encryption_key,
        flagged=bool(row.flagged),
        last_issued=list(row.last_issued or []),
    )


def _read_statement() -> Select[Any]:
    """One row per device template of the ticket (one row with NULLs when there is
    none), each carrying the device, the ticket and the key. The templates are found
    with one index probe each (a loose index scan as a recursive query): a plain
    DISTINCT read every license of a ticket of thousands."""
    one = select(literal(1).label("one")).cte("one")
    vendor = select(_VENDOR.id).where(_VENDOR.slug == bindparam("vendor_slug")).cte("vendor")
    vendor_id = select(vendor.c.id).scalar_subquery()
    locked = (
        select(
            _DEVICE.id,
            _DEVICE.status,
            _DEVICE.seq,
            _DEVICE.confirmed_seq,
            _DEVICE.fingerprint,
            _DEVICE.vm,
            _DEVICE.last_seen_at,
            _DEVICE.encryption_key,
        )
        .where(_DEVICE.vendor_id == vendor_id, _DEVICE.key_id == bindparam("key_id"))
        .with_for_update()
        .cte("locked")
    )
    ticket = (
        select(_TICKET.id)
        .where(
            _TICKET.vendor_id == vendor_id,
            _TICKET.code_hash == bindparam("code_hash", type_=String),
        )
        .cte("ticket")
    )
    key = (
        select(_KEY.kid, _KEY.private_key_encrypted)
        .where(_KEY.vendor_id == vendor_id, _KEY.status == CURRENT)
        .limit(1)
        .cte("signing_key")
    )
    on_ticket = _LICENSE.ticket_id == select(ticket.c.id).scalar_subquery()

    def lowest(*after: Any) -> Any:
        return (
            select(_LICENSE.template_id)
            .where(on_ticket, _LICENSE.delivery == "device", *after)
            .order_by(_LICENSE.template_id)
            .limit(1)
            .scalar_subquery()
        )

    found = select(lowest().label("template_id")).cte("found", recursive=True)
    previous = found.alias("previous")
    following = lowest(_LICENSE.template_id > previous.c.template_id)
    found = found.union_all(select(following).where(previous.c.template_id.is_not(None)))
    held = exists().where(
        on_ticket,
        _LICENSE.delivery == "device",
        _LICENSE.template_id == found.c.template_id,
        _LICENSE.device_id == locked.c.id,
    )
    flagged = exists().where(_FLAG.device_id == locked.c.id, _FLAG.cleared_at.is_(None))
    last_issued = (
        select(_ISSUED.license_ids)
        .where(_ISSUED.device_id == locked.c.id, _ISSUED.seq == locked.c.seq)
        .scalar_subquery()
    )
    return (
        select(
            vendor.c.id.label("vendor_id"),
            locked.c.id.label("device_id"),
            *(column for column in locked.c if column.key != "id"),
            flagged.label("flagged"),
            last_issued.label("last_issued"),
            ticket.c.id.label("ticket_id"),
            key.c.kid,
            key.c.private_key_encrypted,
            found.c.template_id,
            _TEMPLATE.options.label("template_options"),
            _TEMPLATE.secret_encrypted,
            held.label("held"),
        )
        .select_from(
            one.outerjoin(vendor, true())
            .outerjoin(locked, true())
            .outerjoin(ticket, true())
            .outerjoin(key, true())
            .outerjoin(found, found.c.template_id.is_not(None))
            .outerjoin(Template.__table__, _TEMPLATE.id == found.c.template_id)
        )
        .order_by(found.c.template_id)
    )


_READ = _read_statement()


def device_licenses(connection: Connection, device_id: str) -> list[DeviceLicense]:
    """Every license on the device (usable or not), by id."""
    rows = connection.execute(_DEVICE_LICENSES, {"device_id": device_id})
    return [_license(row, row.secret_encrypted) for row in rows]


_LICENSE_COLUMNS = (
    _LICENSE.id,
    _LICENSE.template_id,
    _LICENSE.state,
    _LICENSE.version,
    _LICENSE.issued_at,
    _LICENSE.valid_until,
    _LICENSE.maintenance_until,
    _LICENSE.product_code,
    _LICENSE.features,
    _LICENSE.options,
)
_DEVICE_LICENSES = (
    select(*_LICENSE_COLUMNS, _TEMPLATE.secret_encrypted)
    .join(Template.__table__, _TEMPLATE.id == _LICENSE.template_id)
    .where(_LICENSE.device_id == bindparam("device_id"))
    .order_by(_LICENSE.id)
)


# --- the claim -----------------------------------------------------------------------


def claim(
    connection: Connection,
    vendor_id: str,
    device: Presented,
    new: bool,
    ticket_id: str,
    templates: list[TicketTemplate],
    held: list[DeviceLicense],
    now: datetime,
) -> tuple[list[Claimed], str | None]:
    """Register the device (``new``) or move it on to ``device.seq``, and bind one
    free license of each of ``templates`` to it. On PostgreSQL the same statement
    records the update at ``device.seq`` (``held``, the usable licenses the device
    keeps, and those claimed) and its state is returned; elsewhere None: the caller
    records it (:func:`record_update`).

    A free license is picked skipping rows another transaction holds and taken only if
    it is still free, so that however many devices race for a ticket, a license goes
    to exactly one of them. A concurrent registration of the same key makes the
    statement fail with IntegrityError; the unit of work then runs again and finds it.
    """
    parameters = {
        "to_device": device.id,
        "device_vendor_id": vendor_id,
        "device_key_id": device.key_id,
        "device_public_key": device.public_key,
        "device_encryption_key": device.encryption_key,
        "device_seq": device.seq,
        "device_fingerprint": device.fingerprint,
        "device_vm": device.vm,
        "device_last_seen_at": device.last_seen_at,
        "now": now,
        "on_ticket": ticket_id,
    }
    secrets = {template.id: template.secret_encrypted for template in templates}
    wanted = [template.id for template in templates]
    recorded = None
    if connection.dialect.name == "postgresql":
        statement = _CLAIM_AS_NEW if new else _CLAIM_AS_KNOWN
        parameters |= {
            "template_ids": wanted,
            "held_ids": [item.id for item in held],
            "held_versions": [item.version for item in held],
            "update_id": new_id(),
        }
        rows = connection.execute(statement, parameters).all()
        recorded = rows[0].recorded_state
        rows = [row for row in rows if row.id is not None]
    else:
        connection.execute(_REGISTER if new else _MOVE_ON, parameters)
        rows = []
        for template_id in wanted:
            taken = connection.execute(_CLAIM_ONE, {**parameters, "of_template": template_id})
            rows.extend(taken.all())
    claimed = [Claimed(_license(row, secrets[row.template_id]), row.activated_at) for row in rows]
    return claimed, recorded


def _license(row: Any, secret_encrypted: bytes | None) -> DeviceLicense:
    return DeviceLicense(
        id=row.id,
        template_id=row.template_id,
        state=row.state,
        version=row.version,
        issued_at=row.issued_at,
        valid_until=row.valid_until,
        maintenance_until=row.maintenance_until,
        product_code=row.product_code,
        features=row.features,
        options=row.options,
        secret_encrypted=secret_encrypted,
    )


_NOW = bindparam("now", type_=_LICENSE.updated_at.type)
_TAKEN = {
    "state": literal_column(f"'{ACTIVATED}'"),
    "device_id": bindparam("to_device", type_=_LICENSE.device_id.type),
    "version": _LICENSE.version + 1,
    "updated_at": _NOW,
    "activated_at": func.coalesce(_LICENSE.activated_at, _NOW),
}


def _device_values(*names: str) -> dict[str, Any]:
    return {name: bindparam(f"device_{name}", type_=_DEVICE[name].type) for name in names}


_MOVED = ("seq", "fingerprint", "vm", "last_seen_at")
_REGISTER = insert(Device).values(
    id=bindparam("to_device", type_=_DEVICE.id.type),
    **_device_values("vendor_id", "key_id", "public_key", "encryption_key", *_MOVED),
    status=literal_column(f"'{ACTIVE}'"),
    confirmed_seq=literal(0),
    lease_renewed_at=_NOW,
    created_at=_NOW,
)
_MOVE_ON = (
    update(Device)
    .where(_DEVICE.id == bindparam("to_device", type_=_DEVICE.id.type))
    .values(**_device_values(*_MOVED), lease_renewed_at=_NOW)
)


def _free(candidate: Any, template_id: Any) -> Select[Any]:
    """Any one free, live license of the template on the ticket (no ORDER BY, so the
    index scan stops at the first), skipping rows another transaction has locked."""
    return (
        select(candidate.c.id)
        .where(
            candidate.c.ticket_id == bindparam("on_ticket", type_=String),
            candidate.c.template_id == template_id,
            candidate.c.state.in_(_BINDABLE),
            candidate.c.device_id.is_(None),
            candidate.c.valid_until.is_(None) | (candidate.c.valid_until > _NOW),
            # not churned out (activation/churn.py): its period's count is not full
            candidate.c.churn_full_until.is_(None) | (candidate.c.churn_full_until <= _NOW),
        )
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def _claim_statement(picked: Any) -> Update:
    return (
        update(License)
        .where(picked, _LICENSE.device_id.is_(None), _LICENSE.state.in_(_BINDABLE))
        .values(_TAKEN)
        .returning(*_LICENSE_COLUMNS, _LICENSE.activated_at)
    )


def _claim_many(device_row: Any) -> Select[Any]:
    """PostgreSQL: the device's row, every claim and the update's record in one
    statement. The record's state is hashed here as ``formats.device.state_hash``
    hashes it (the caller checks that the two agree): the licenses it holds and
    keeps (``held_ids``, ``held_versions``) and those just claimed."""
    candidate = License.__table__.alias("candidate")
    wanted = (
        func.unnest(bindparam("template_ids", type_=ARRAY(String)))
        .table_valued("template_id")
        .render_derived(name="wanted")
    )
    pick = _free(candidate, wanted.c.template_id).lateral("pick")
    # Materialized: picked once. As a subquery of the UPDATE, the planner may run the
    # picks again for each row it looks at, and each run may pick another free row.
    picked = (
        select(pick.c.id)
        .select_from(wanted.join(pick, true()))
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    claimed = _claim_statement(_LICENSE.id.in_(select(picked.c.id))).cte("claimed")
    recorded = _record_from(claimed).cte("recorded")
    one = select(literal(1).label("one")).cte("one")
    return (
        select(*claimed.c, select(recorded.c.state).scalar_subquery().label("recorded_state"))
        .select_from(one.outerjoin(claimed, true()))
        .add_cte(device_row.cte("device_row"))
    )


def _record_from(claimed: Any) -> Any:
    """The INSERT of the update's record: its licenses are the held ones and ``claimed``."""
    held = (
        func.unnest(
            bindparam("held_ids", type_=ARRAY(String)),
            bindparam("held_versions", type_=ARRAY(Integer)),
        )
        .table_valued("id", "version")
        .render_derived(name="held")
    )
    current = (
        select(claimed.c.id, claimed.c.version)
        .union_all(select(held.c.id, held.c.version))
        .cte("current")
    )
    in_order = current.c.id.collate("C")  # the order of Python's str
    pair = '["' + current.c.id + '",' + cast(current.c.version, Text) + "]"
    pairs = func.coalesce(func.string_agg(pair, aggregate_order_by(literal(","), in_order)), "")
    digest = func.sha256(func.convert_to("[" + pairs + "]", "UTF8"))
    state = func.rtrim(func.translate(func.encode(digest, "base64"), "+/", "-_"), "=")
    license_ids = func.coalesce(
        func.jsonb_agg(aggregate_order_by(current.c.id, in_order)), literal_column("'[]'::jsonb")
    )
    values = select(
        bindparam("update_id", type_=String),
        bindparam("to_device", type_=String),
        bindparam("device_seq", type_=Integer),
        state,
        license_ids,
        _NOW,
    ).select_from(current)
    names = ["id", "device_id", "seq", "state", "license_ids", "issued_at"]
    return insert(DeviceUpdate).from_select(names, values).returning(_ISSUED.state)


_CLAIM_AS_NEW = _claim_many(_REGISTER)
_CLAIM_AS_KNOWN = _claim_many(_MOVE_ON)
_CLAIM_ONE = _claim_statement(
    _LICENSE.id
    == _free(
        License.__table__.alias("candidate"), bindparam("of_template", type_=String)
    ).scalar_subquery()
)


def has_expired_free(connection: Connection, ticket_id: str, now: datetime) -> bool:
    """Whether a device license of the ticket is free but past its end (a refusal then
    says so rather than that every license is in use)."""
    found = connection.execute(_EXPIRED_FREE, {"on_ticket": ticket_id, "now": now}).first()
    return found is not None


def churned_free(
    connection: Connection, ticket_id: str, now: datetime
) -> tuple[datetime, dict[str, Any]] | None:
    """The free, live device license of the ticket that is churned out (its churn
    limit's period is full) and may be activated again first: when, and its options;
    None if no free license is churned out."""
    row = connection.execute(_CHURNED_FREE, {"on_ticket": ticket_id, "now": now}).first()
    return None if row is None else (row.churn_full_until, row.options)


_CHURNED_FREE = (
    select(_LICENSE.churn_full_until, _LICENSE.options)
    .where(
        _LICENSE.ticket_id == bindparam("on_ticket", type_=String),
        _LICENSE.delivery == "device",
        _LICENSE.state.in_(_BINDABLE),
        _LICENSE.device_id.is_(None),
        _LICENSE.valid_until.is_(None) | (_LICENSE.valid_until > _NOW),
        _LICENSE.churn_full_until > _NOW,
    )
    .order_by(_LICENSE.churn_full_until)
    .limit(1)
)


_EXPIRED_FREE = (
    select(_LICENSE.id)
    .where(
        _LICENSE.ticket_id == bindparam("on_ticket", type_=String),
        _LICENSE.delivery == "device",
        _LICENSE.state.in_(_BINDABLE),
        _LICENSE.device_id.is_(None),
        _LICENSE.valid_until <= _NOW,
    )
    .limit(1)
)


# --- the record ----------------------------------------------------------------------


def start_validity(connection: Connection, until: dict[str, datetime]) -> None:
    """Set ``valid_until`` of the licenses whose validity starts at this activation."""
    if until:
        rows = [{"license_id": key, "valid_until": value} for key, value in until.items()]
        connection.execute(_START_VALIDITY, rows)


_START_VALIDITY = (
    update(License)
    .where(_LICENSE.id == bindparam("license_id"))
    .values(valid_until=bindparam("valid_until", type_=_LICENSE.valid_until.type))
)


def record_update(
    connection: Connection,
    device_id: str,
    seq: int,
    state: str,
    license_ids: list[str],
    now: datetime,
) -> None:
    """What was issued to the device at ``seq`` (receipts and syncs compare with it)."""
    values = {
        "id": new_id(),
        "device_id": device_id,
        "seq": seq,
        "state": state,
        "license_ids": license_ids,
        "issued_at": now,
    }
    connection.execute(_RECORD_UPDATE, values)


_RECORD_UPDATE = insert(DeviceUpdate).values(
    {
        name: bindparam(name, type_=_ISSUED[name].type)
        for name in ("id", "device_id", "seq", "state", "license_ids", "issued_at")
    }
)
