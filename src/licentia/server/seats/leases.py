"""The seat statements of the hot calls: renew, end, and take a free seat.

Each function here runs on a Connection, without the ORM, and keeps the promises of
:mod:`licentia.server.seats.services` in the fewest statements:

- on PostgreSQL every function is *one* statement (data-modifying CTEs write the seat
  and its event together), so it is atomic on its own and needs no surrounding
  transaction: the calls run in autocommit and a row lock is held only inside the
  database, never across a round trip to Python;
- on SQLite a function may run a few statements, so it must run inside a write
  transaction; every SQLite write does (``BEGIN IMMEDIATE``), and the process's write
  lock makes the statements one unit anyway.

The limits stay where they were: a seat is taken only by the conditional UPDATE (free
meaning never used, released, or expired against ``now`` in the query), a renewal
names the lease *and* its fence, and ``(license_id, holder_key)`` is unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from licentia.domain.errors import ConflictError
from licentia.domain.ids import new_id
from licentia.server.db.arrays import unnested
from licentia.server.db.core import CoreConnection
from licentia.server.seats.models import SeatEvent, SeatSlot

_slots = cast(Table, SeatSlot.__table__)
_events = cast(Table, SeatEvent.__table__)
# Each column of a seat event and the bound parameter that fills it.
_EVENT_PARAMETERS = {
    "id": "event_id",
    "vendor_id": "vendor",
    "license_id": "license",
    "kind": "kind",
    "lease_id": "lease",
    "holder_key": "holder",
    "in_use": "in_use",
    "at": "now",
}
_EVENT_COLUMNS = tuple(_EVENT_PARAMETERS)


def _event_param(column: str, name: str) -> Any:
    return bindparam(name, type_=_events.c[column].type)


def _free(table: Any, now: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(table.c.expires_at.is_(None), table.c.expires_at <= now)


def _is_postgresql(connection: CoreConnection) -> bool:
    return connection.dialect.name == "postgresql"


# -- renew ------------------------------------------------------------------------------

_RENEW = (
    update(_slots)
    .where(
        _slots.c.vendor_id == bindparam("vendor"),
        _slots.c.lease_id == bindparam("lease"),
        _slots.c.fence == bindparam("held_fence"),
        _slots.c.borrowed.is_(False),
    )
    .values(expires_at=bindparam("until", type_=_slots.c.expires_at.type), released_at=null())
    .returning(_slots.c.license_id)
)


def renew(
    connection: CoreConnection, vendor_id: str, lease_id: str, fence: int, *, until: datetime
) -> str:
    """Extend a lease to ``until``; returns its license id. Raises ConflictError
    ``SEAT_LOST`` if the seat was released, force-released or reassigned (the fence
    moved on), or is borrowed. One statement on every backend."""
    license_id = connection.scalar(
        _RENEW, {"vendor": vendor_id, "lease": lease_id, "held_fence": fence, "until": until}
    )
    if license_id is None:
        raise ConflictError("this seat is no longer yours; check out again", code="SEAT_LOST")
    return str(license_id)


# -- end ----------------------------------------------------------------------------------


def _in_use_besides(slot_id: Any, license_id: Any) -> Any:
    """How many of the pool's other seats are held at ``now``: after a release, the
    seats in use (on PostgreSQL a CTE's sibling reads the rows as they were before)."""
    other = _slots.alias("other")
    return (
        select(func.count())
        .select_from(other)
        .where(
            other.c.license_id == license_id,
            other.c.expires_at > bindparam("now", type_=_slots.c.expires_at.type),
            other.c.id != slot_id,
        )
        .scalar_subquery()
    )


def _ending_values() -> dict[str, Any]:
    now = bindparam("now", type_=_slots.c.expires_at.type)
    return {
        "holder_key": null(),
        "lease_id": null(),
        "expires_at": now,
        "released_at": now,
        "borrowed": false(),
    }


def end_statement(found: Any) -> Any:
    """PostgreSQL: lock the slot the SELECT ``found`` finds (its ``id``, ``license_id``,
    ``holder_key`` and ``vendor_id``, locked FOR UPDATE), free it and write the event,
    in one statement; returns the license id, no row if nothing was found."""
    old = found.cte("old")
    ended = (
        update(_slots)
        .where(_slots.c.id == old.c.id)
        .values(**_ending_values())
        .returning(_slots.c.id, _slots.c.license_id, old.c.holder_key, old.c.vendor_id)
        .cte("ended")
    )
    event = select(
        _event_param("id", "event_id"),
        ended.c.vendor_id,
        ended.c.license_id,
        _event_param("kind", "kind"),
        _event_param("lease_id", "lease"),
        ended.c.holder_key,
        _in_use_besides(ended.c.id, ended.c.license_id),
        _event_param("at", "now"),
    ).select_from(ended)
    return (
        insert(_events)
        .from_select(_EVENT_COLUMNS, event)
        .returning(_events.c.license_id)
        .add_cte(old)
        .add_cte(ended)
    )


def end_many_statement(found: Any) -> Any:
    """PostgreSQL: :func:`end_statement` for several slots in one statement. ``found``
    also gives each slot's ``expires_at`` as it was, its ``lease``, its event's id
    ``event_id`` and its place ``n`` in the batch. Each release event counts the
    seats still in use after it, as if the batch's releases ran one after the other
    in ``n`` order. Returns the event id of each slot ended."""
    old = found.cte("old")
    ended = (
        update(_slots)
        .where(_slots.c.id == old.c.id)
        .values(**_ending_values())
        .returning(*old.c)
        .cte("ended")
    )
    now = bindparam("now", type_=_slots.c.expires_at.type)
    held = case((ended.c.expires_at > now, 1), else_=0)
    held_so_far = func.sum(held).over(partition_by=ended.c.license_id, order_by=ended.c.n)
    event = select(
        ended.c.event_id,
        ended.c.vendor_id,
        ended.c.license_id,
        literal("release", _events.c.kind.type),
        ended.c.lease,
        ended.c.holder_key,
        _in_use_besides(ended.c.id, ended.c.license_id) - (held_so_far - held),
        now,
    ).select_from(ended)
    return (
        insert(_events)
        .from_select(_EVENT_COLUMNS, event)
        .returning(_events.c.id)
        .add_cte(old)
        .add_cte(ended)
    )


# The lease's slot; with a ``fence``, only while the lease still has it.
_ENDING = (
    _slots.c.vendor_id == bindparam("vendor"),
    _slots.c.lease_id == bindparam("lease"),
    _slots.c.fence == func.coalesce(bindparam("held_fence", type_=Integer), _slots.c.fence),
)


def _end_statement() -> Any:
    return end_statement(
        select(_slots.c.id, _slots.c.license_id, _slots.c.holder_key, _slots.c.vendor_id)
        .where(*_ENDING)
        .with_for_update()
    )


_END = _end_statement()
_END_FIND = (
    select(_slots.c.id, _slots.c.license_id, _slots.c.holder_key).where(*_ENDING).with_for_update()
)
_END_FREE = update(_slots).where(_slots.c.id == bindparam("slot_id")).values(**_ending_values())
_EVENT = insert(_events).values(
    {column: _event_param(column, name) for column, name in _EVENT_PARAMETERS.items()}
)


def end(
    connection: CoreConnection,
    vendor_id: str,
    lease_id: str,
    *,
    now: datetime,
    kind: str,
    fence: int | None = None,
) -> str | None:
    """Free a lease's seat at ``now`` and record the event ``kind`` (release,
    force_release) with the seats still in use; returns the license id, or None if no
    seat holds this lease (it never existed, was ended already or, with ``fence``,
    the lease's fence is another)."""
    # (not "fence": a parameter named as a column would set it in an UPDATE)
    values = {"vendor": vendor_id, "lease": lease_id, "now": now, "kind": kind}
    values["held_fence"] = fence
    values["event_id"] = new_id()
    if _is_postgresql(connection):
        found = connection.scalar(_END, values)
        return None if found is None else str(found)
    row = connection.execute(_END_FIND, values).first()
    if row is None:
        return None
    connection.execute(_END_FREE, {"slot_id": row.id, "now": now})
    in_use = connection.scalar(select(_in_use_besides(row.id, row.license_id)), {"now": now})
    connection.execute(
        _EVENT, values | {"license": row.license_id, "holder": row.holder_key, "in_use": in_use}
    )
    return str(row.license_id)


# -- take a free seat ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """Who takes a seat, until when, and what to record."""

    license_id: str
    vendor_id: str
    holder_key: str
    user: str
    device: str
    process: str
    now: datetime
    expires_at: datetime
    borrowed: bool = False

    def parameters(self, lease_id: str) -> dict[str, Any]:
        return {
            "license": self.license_id,
            "vendor": self.vendor_id,
            "holder": self.holder_key,
            "user": self.user,
            "device": self.device,
            "process": self.process,
            "now": self.now,
            "until": self.expires_at,
            "is_borrowed": self.borrowed,
            "lease": lease_id,
            "event_id": new_id(),
            "kind": "borrow" if self.borrowed else "checkout",
            "in_use": 0,
        }


@dataclass(frozen=True)
class Taken:
    """:func:`take_free`'s answer: the fence of the new lease, or why there is none."""

    fence: int | None
    holds_own: bool = False


def _own(table: Any) -> Any:
    return select(table.c.id).where(
        table.c.license_id == bindparam("license"), table.c.holder_key == bindparam("holder")
    )


def _free_slot(table: Any) -> Any:
    """The lowest free slot nobody else is taking right now (SKIP LOCKED)."""
    now = bindparam("now", type_=_slots.c.expires_at.type)
    return (
        select(table.c.id)
        .where(table.c.license_id == bindparam("license"), _free(table, now))
        .order_by(table.c.slot)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def _take(slot_id: Any) -> Any:
    now = bindparam("now", type_=_slots.c.expires_at.type)
    return (
        update(_slots)
        .where(_slots.c.id == slot_id, _free(_slots, now))
        .values(
            holder_key=bindparam("holder"),
            lease_id=bindparam("lease"),
            fence=_slots.c.fence + 1,
            acquired_at=now,
            expires_at=bindparam("until", type_=_slots.c.expires_at.type),
            released_at=null(),
            borrowed=bindparam("is_borrowed"),
            user_name=bindparam("user"),
            device_name=bindparam("device"),
            process_id=bindparam("process"),
        )
        .returning(_slots.c.fence)
    )


def _take_statement() -> Any:
    """PostgreSQL: unless the holder has a slot of its own, take the lowest free one
    and record the checkout, in one statement; answers (fence or NULL, holds own)."""
    own = _own(_slots).cte("own")
    candidates = _slots.alias("candidate")
    free = _free_slot(candidates).where(~exists(select(own.c.id))).cte("free")
    taken = _take(free.c.id).cte("taken")
    event = select(
        *(_event_param(column, name) for column, name in _EVENT_PARAMETERS.items())
    ).select_from(taken)
    recorded = insert(_events).from_select(_EVENT_COLUMNS, event).cte("recorded")
    return (
        select(
            select(taken.c.fence).scalar_subquery().label("fence"),
            exists(select(own.c.id)).label("holds_own"),
        )
        .add_cte(own)
        .add_cte(free)
        .add_cte(taken)
        .add_cte(recorded)
    )


_TAKE = _take_statement()
_OWN = _own(_slots)
_FREE = _free_slot(_slots)
_TAKE_SLOT = _take(bindparam("slot_id"))


def take_free(connection: CoreConnection, claim: Claim) -> tuple[str, Taken]:
    """Give ``claim``'s holder a new lease on the pool's lowest free seat and record
    the checkout (or borrow); returns the lease id and the fence. Takes nothing when
    the holder already has a slot of its own (``holds_own``: a reconnect, which
    :func:`licentia.server.seats.services.checkout` handles) or when no free seat is
    left that another checkout is not taking at this moment (``fence`` None; that
    checkout may yet fail, so only the full checkout may deny)."""
    lease_id = new_id()
    values = claim.parameters(lease_id)
    if _is_postgresql(connection):
        row = connection.execute(_TAKE, values).one()
        return lease_id, Taken(row.fence, bool(row.holds_own))
    if connection.scalar(_OWN, values) is not None:
        return lease_id, Taken(None, holds_own=True)
    slot = connection.scalar(_FREE, values)
    if slot is None:
        return lease_id, Taken(None)
    fence = connection.scalar(_TAKE_SLOT, values | {"slot_id": slot})
    if fence is not None:
        connection.execute(_EVENT, values)
    return lease_id, Taken(fence)


def _take_many_statement() -> Any:
    """PostgreSQL: :func:`_take_statement` for several claims (each of its own holder)
    in one statement. Per pool, the claims whose holder has no slot of its own take
    the pool's lowest free seats that no other checkout is taking (SKIP LOCKED), the
    first claim the lowest; a claim left without a seat takes nothing. Answers a row
    per claim: its place ``n``, the fence of its new lease (or NULL) and whether its
    holder has a slot of its own."""
    now = bindparam("now", type_=_slots.c.expires_at.type)
    given = unnested(
        "given",
        ("licenses", "license", String),
        ("vendors", "vendor", String),
        ("holders", "holder", String),
        ("users", "user", String),
        ("devices", "device", String),
        ("processes", "process", String),
        ("untils", "until", DateTime(timezone=True)),
        ("leases", "lease", String),
        ("event_ids", "event_id", String),
        numbered=True,
    )
    wanted = select(*given.c).cte("wanted")
    own = (
        select(wanted.c.n)
        .join(
            _slots,
            and_(_slots.c.license_id == wanted.c.license, _slots.c.holder_key == wanted.c.holder),
        )
        .cte("own")
    )
    rank = func.row_number().over(partition_by=wanted.c.license, order_by=wanted.c.n)
    asking = (
        select(*wanted.c, rank.label("rank"))
        .where(wanted.c.n.not_in(select(own.c.n)))
        .cte("asking")
    )
    need = (
        select(asking.c.license, func.count().label("seats"))
        .group_by(asking.c.license)
        .subquery("need")
    )
    candidate = _slots.alias("candidate")
    lowest = (
        select(candidate.c.id, candidate.c.license_id, candidate.c.slot)
        .where(candidate.c.license_id == need.c.license, _free(candidate, now))
        .order_by(candidate.c.slot)
        .limit(need.c.seats)
        .with_for_update(skip_locked=True)
        .lateral("lowest")
    )
    place = func.row_number().over(partition_by=lowest.c.license_id, order_by=lowest.c.slot)
    free = (
        select(lowest.c.id, lowest.c.license_id, place.label("rank"))
        .select_from(need.join(lowest, true()))
        .cte("free")
    )
    pairs = (
        select(*asking.c, free.c.id.label("slot_id"))
        .join(free, and_(free.c.license_id == asking.c.license, free.c.rank == asking.c.rank))
        .cte("pairs")
    )
    taken = (
        update(_slots)
        .where(_slots.c.id == pairs.c.slot_id, _free(_slots, now))
        .values(
            holder_key=pairs.c.holder,
            lease_id=pairs.c.lease,
            fence=_slots.c.fence + 1,
            acquired_at=now,
            expires_at=pairs.c.until,
            released_at=null(),
            borrowed=false(),
            user_name=pairs.c.user,
            device_name=pairs.c.device,
            process_id=pairs.c.process,
        )
        .returning(
            pairs.c.n,
            _slots.c.fence,
            pairs.c.event_id,
            pairs.c.vendor,
            pairs.c.license,
            pairs.c.lease,
            pairs.c.holder,
        )
        .cte("taken")
    )
    event = select(
        taken.c.event_id,
        taken.c.vendor,
        taken.c.license,
        literal("checkout", _events.c.kind.type),
        taken.c.lease,
        taken.c.holder,
        literal(0, _events.c.in_use.type),
        now,
    ).select_from(taken)
    recorded = insert(_events).from_select(_EVENT_COLUMNS, event).cte("recorded")
    return (
        select(
            wanted.c.n,
            taken.c.fence,
            wanted.c.n.in_(select(own.c.n)).label("holds_own"),
        )
        .select_from(wanted.outerjoin(taken, taken.c.n == wanted.c.n))
        .add_cte(wanted, own, asking, free, pairs, taken, recorded)
    )


_TAKE_MANY = _take_many_statement()


def take_many(connection: CoreConnection, claims: list[Claim]) -> list[tuple[str, Taken]]:
    """PostgreSQL only: :func:`take_free` for several checkouts (not borrows) in one
    statement; the lease id and what was taken, per claim. Each (pool, holder) may
    appear once in ``claims``; a holder that took a slot meanwhile (through another
    statement) fails the statement (IntegrityError), having taken nothing."""
    assert not any(claim.borrowed for claim in claims), "a borrow is taken alone"
    lease_ids = [new_id() for _ in claims]
    parameters = {
        "licenses": [claim.license_id for claim in claims],
        "vendors": [claim.vendor_id for claim in claims],
        "holders": [claim.holder_key for claim in claims],
        "users": [claim.user for claim in claims],
        "devices": [claim.device for claim in claims],
        "processes": [claim.process for claim in claims],
        "untils": [claim.expires_at for claim in claims],
        "leases": lease_ids,
        "event_ids": [new_id() for _ in claims],
        "now": max(claim.now for claim in claims),
    }
    rows = {row.n: row for row in connection.execute(_TAKE_MANY, parameters).all()}
    return [
        (lease_id, Taken(rows[n].fence, bool(rows[n].holds_own)))
        for n, lease_id in enumerate(lease_ids, start=1)
    ]


def in_use(connection: CoreConnection, license_id: str, now: datetime) -> int:
    """How many of the pool's seats are held at ``now``."""
    return int(
        connection.scalar(
            select(func.count())
            .select_from(_slots)
            .where(and_(_slots.c.license_id == license_id, _slots.c.expires_at > now))
        )
        or 0
    )
