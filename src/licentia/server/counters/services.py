"""Unit counters: consume atomically and idempotently, top up, reset.

The balance lives in one row and changes only through a conditional UPDATE
(``balance >= units``), so concurrent consumers can never drive it below zero.
Every change is a ledger row; a consumption's key is unique per counter, so the
same key never counts twice, even if the first answer was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    String,
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import ConflictError, NotFoundError, ValidationError
from licentia.domain.ids import new_id
from licentia.domain.templates import StoredOptions
from licentia.server.audit.services import record
from licentia.server.counters.models import LedgerEntry, UnitCounter
from licentia.server.db.arrays import unnested
from licentia.server.db.core import CoreConnection
from licentia.server.licenses.models import License

MAX_KEY = 200  # a consumption's key, as long as the ledger keeps it
LOW_BALANCE_SHARE = 0.1  # an event when the balance falls below 10 % of the initial units
_counters = cast(Table, UnitCounter.__table__)
_ledger = cast(Table, LedgerEntry.__table__)


@dataclass(frozen=True)
class Consumption:
    entry: LedgerEntry
    replayed: bool


def open_counter(session: Session, license_: License, now: datetime) -> None:
    """Create the license's counter with its initial units (if it has units, once)."""
    units = StoredOptions(license_.options).units
    if units is None or session.get(UnitCounter, license_.id) is not None:
        return
    session.add(
        UnitCounter(
            license_id=license_.id, vendor_id=license_.vendor_id, balance=int(units), updated_at=now
        )
    )
    session.add(
        LedgerEntry(
            vendor_id=license_.vendor_id,
            license_id=license_.id,
            kind="initial",
            delta=int(units),
            balance_after=int(units),
            key=f"initial:{license_.id}",
            at=now,
        )
    )
    session.flush()


def consume(
    session: Session, actor: Actor, license_: License, units: int, key: str, *, now: datetime
) -> Consumption:
    """Take ``units``. Raises ConflictError ``UNITS_EXHAUSTED`` (nothing taken) when too few
    remain, ValidationError ``IDEMPOTENCY_KEY_REUSED`` when ``key`` was used for another
    amount. A repeated key returns the first consumption (``replayed``)."""
    if units <= 0:
        raise ValidationError("units must be positive", field="units")
    if not 1 <= len(key) <= 200:
        raise ValidationError("a consumption key has 1-200 characters", field="key")
    known = _entry(session, license_.id, key)
    if known is not None:
        return _replay(known, units)
    row = session.execute(
        update(UnitCounter)
        .where(UnitCounter.license_id == license_.id, UnitCounter.balance >= units)
        .values(balance=UnitCounter.balance - units, updated_at=now)
        .returning(UnitCounter.balance)
    ).first()
    if row is None:
        raise ConflictError(
            "not enough units left",
            code="UNITS_EXHAUSTED",
            balance=balance_of(session, license_.id),
        )
    entry = LedgerEntry(
        id=new_id(),
        vendor_id=license_.vendor_id,
        license_id=license_.id,
        kind="consume",
        delta=-units,
        balance_after=int(row[0]),
        key=key,
        actor_id=actor.id,
        at=now,
    )
    session.add(entry)
    session.flush()  # a concurrent twin with the same key fails here and is retried
    _maybe_low(session, actor, license_, int(row[0]), units)
    return Consumption(entry, replayed=False)


def _replay(known: LedgerEntry, units: int) -> Consumption:
    if known.kind != "consume" or known.delta != -units:
        raise ValidationError(
            "this key was used for another consumption", field="key", code="IDEMPOTENCY_KEY_REUSED"
        )
    return Consumption(known, replayed=True)


def adjust(
    session: Session, actor: Actor, license_: License, *, kind: str, units: int, now: datetime
) -> LedgerEntry:
    """``top_up`` adds units; ``reset`` sets the balance to ``units``."""
    if units < 0 or (kind == "top_up" and units == 0):
        raise ValidationError("units must be positive", field="units")
    counter = session.scalar(
        select(UnitCounter).where(UnitCounter.license_id == license_.id).with_for_update()
    )
    if counter is None:
        raise NotFoundError("unit counter of license", license_.id, code="NO_COUNTER")
    delta = units if kind == "top_up" else units - counter.balance
    counter.balance += delta
    counter.updated_at = now
    entry = LedgerEntry(
        vendor_id=license_.vendor_id,
        license_id=license_.id,
        kind=kind,
        delta=delta,
        balance_after=counter.balance,
        key=f"{kind}:{new_id()}",
        actor_id=actor.id,
        at=now,
    )
    session.add(entry)
    session.flush()
    record(
        session,
        actor,
        f"counter.{kind}",
        "license",
        license_.id,
        after={"delta": delta, "balance": counter.balance},
    )
    return entry


def balance_of(session: Session, license_id: str) -> int:
    counter = session.get(UnitCounter, license_id)
    if counter is None:
        raise NotFoundError("unit counter of license", license_id, code="NO_COUNTER")
    return counter.balance


def ledger(session: Session, license_id: str) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.license_id == license_id)
            .order_by(LedgerEntry.at, LedgerEntry.id)
        )
    )


@dataclass(frozen=True)
class UnitsView:
    """A counter as the vendor sees it: the balance, what the ledger says it should
    be, and the ledger."""

    license_id: str
    balance: int
    recomputed_from_ledger: int
    ledger: list[LedgerEntry]


def units_view(session: Session, license_id: str) -> UnitsView:
    """Raises NotFoundError ``NO_COUNTER`` if the license counts no units."""
    return UnitsView(
        license_id,
        balance_of(session, license_id),
        recomputed_balance(session, license_id),
        ledger(session, license_id),
    )


def recomputed_balance(session: Session, license_id: str) -> int:
    """The balance as the ledger tells it: the audit check for the stored balance."""
    return int(
        session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(
                LedgerEntry.license_id == license_id
            )
        )
        or 0
    )


def _entry(session: Session, license_id: str, key: str) -> LedgerEntry | None:
    return session.scalar(
        select(LedgerEntry).where(LedgerEntry.license_id == license_id, LedgerEntry.key == key)
    )


def _maybe_low(session: Session, actor: Actor, license_: License, balance: int, units: int) -> None:
    """Audit the consumption that crossed the low-balance mark, and the one that took
    the last unit (the webhooks' ``units.low`` and ``units.exhausted``)."""
    threshold = low_balance_threshold(license_.options)
    if balance < threshold <= balance + units:
        record(
            session,
            actor,
            "counter.low_balance",
            "license",
            license_.id,
            after={"balance": balance, "threshold": threshold},
        )
    if balance == 0:
        record(session, actor, "counter.exhausted", "license", license_.id, after={"balance": 0})


# -- the one-statement consumption -------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    """A consumption :func:`consume_at_once` wrote: its ledger entry's essentials."""

    entry_id: str
    balance_after: int


def low_balance_threshold(options: dict[str, Any]) -> int:
    """The balance under which a consumption records ``counter.low_balance``."""
    return int((StoredOptions(options).units or 0) * LOW_BALANCE_SHARE)


def _param(table: Table, column: str, name: str) -> Any:
    return bindparam(name, type_=table.c[column].type)


def _take_units() -> Any:
    """UPDATE the balance if it covers the units, the key is new, and the balance
    neither crosses the low-balance threshold nor reaches zero (those consumptions
    need their audit events)."""
    units, threshold = _param(_counters, "balance", "units"), _param(_counters, "balance", "low")
    return (
        update(_counters)
        .where(
            _counters.c.license_id == bindparam("license"),
            _counters.c.balance > units,
            or_(_counters.c.balance - units >= threshold, _counters.c.balance < threshold),
            ~exists(
                select(_ledger.c.id).where(
                    _ledger.c.license_id == bindparam("license"), _ledger.c.key == bindparam("key")
                )
            ),
        )
        .values(
            balance=_counters.c.balance - units, updated_at=_param(_counters, "updated_at", "now")
        )
        .returning(_counters.c.balance)
    )


def _entry_values(balance_after: Any) -> dict[str, Any]:
    return {
        "id": _param(_ledger, "id", "entry_id"),
        "vendor_id": _param(_ledger, "vendor_id", "vendor"),
        "license_id": _param(_ledger, "license_id", "license"),
        "kind": literal("consume", _ledger.c.kind.type),
        "delta": -_param(_ledger, "delta", "units"),
        "balance_after": balance_after,
        "key": _param(_ledger, "key", "key"),
        "actor_id": _param(_ledger, "actor_id", "actor"),
        "at": _param(_ledger, "at", "now"),
    }


def _consume_statement() -> Any:
    """PostgreSQL: the balance and its ledger row in one statement."""
    taken = _take_units().cte("taken")
    values = _entry_values(taken.c.balance)
    return (
        insert(_ledger)
        .from_select(list(values), select(*values.values()).select_from(taken))
        .returning(_ledger.c.balance_after)
        .add_cte(taken)
    )


_CONSUME = _consume_statement()
_TAKE_UNITS = _take_units()
_ENTRY = insert(_ledger).values(_entry_values(_param(_ledger, "balance_after", "balance_after")))


def consume_at_once(
    connection: CoreConnection,
    *,
    license_id: str,
    vendor_id: str,
    actor_id: str | None,
    units: int,
    key: str,
    low_balance: int,
    now: datetime,
) -> Taken | None:
    """The common consumption without the ORM: take ``units`` and write the ledger row
    together. On PostgreSQL it is one statement, run in autocommit, so the counter's
    row lock is never held across a round trip; on SQLite it runs inside the caller's
    write transaction. Returns None, having changed nothing, whenever :func:`consume`
    has more to do: the key was used before (a replay, or a concurrent twin), too few
    units are left, or the balance would cross ``low_balance`` (see
    :func:`low_balance_threshold`) or reach zero."""
    if units <= 0 or not 1 <= len(key) <= MAX_KEY:
        return None
    entry_id = new_id()
    values: dict[str, Any] = {
        "entry_id": entry_id,
        "license": license_id,
        "vendor": vendor_id,
        "units": units,
        "low": low_balance,
        "key": key,
        "actor": actor_id,
        "now": now,
    }
    if connection.dialect.name != "postgresql":
        # The write transaction holds the whole database: no twin can come between.
        balance = connection.scalar(_TAKE_UNITS, values)
        if balance is not None:
            connection.execute(_ENTRY, values | {"balance_after": balance})
    else:
        try:
            balance = connection.scalar(_CONSUME, values)
        except IntegrityError:
            return None  # a twin with the same key won meanwhile: consume() replays it
    return None if balance is None else Taken(entry_id, int(balance))


# -- many consumptions in one statement (PostgreSQL) ----------------------------------------


@dataclass(frozen=True)
class UnitsClaim:
    """One consumption of :func:`consume_many`'s batch, as :func:`consume_at_once`
    takes it (``low_balance``: :func:`low_balance_threshold` of the license)."""

    license_id: str
    vendor_id: str
    actor_id: str | None
    units: int
    key: str
    low_balance: int


def _consume_many_statement() -> Any:
    """PostgreSQL: the consumptions of several claims in one statement. Per counter,
    all of its claims or none: the balance falls by their sum under the conditions
    of :func:`_take_units` (every one of their keys new, the sum leaving more than
    zero and not crossing the low-balance mark, which a falling balance crosses at
    most once), and each claim gets its ledger row with the balance after it, in the
    order given."""
    wanted = unnested(
        "wanted",
        ("entry_ids", "entry_id", String),
        ("licenses", "license", String),
        ("vendors", "vendor", String),
        ("actors", "actor", String),
        ("units_each", "units", BigInteger),
        ("keys", "key", String),
        ("lows", "low", BigInteger),
        numbered=True,
    )
    upto = func.sum(wanted.c.units).over(partition_by=wanted.c.license, order_by=wanted.c.n)
    ordered = select(*wanted.c, upto.label("upto")).cte("ordered")
    totals = (
        select(
            ordered.c.license,
            func.sum(ordered.c.units).label("total"),
            func.max(ordered.c.low).label("low"),
        )
        .group_by(ordered.c.license)
        .cte("totals")
    )
    used = select(_ledger.c.id).where(
        _ledger.c.license_id == ordered.c.license,
        _ledger.c.key == ordered.c.key,
        ordered.c.license == totals.c.license,
    )
    taken = (
        update(_counters)
        .where(
            _counters.c.license_id == totals.c.license,
            _counters.c.balance > totals.c.total,
            or_(
                _counters.c.balance - totals.c.total >= totals.c.low,
                _counters.c.balance < totals.c.low,
            ),
            ~exists(used),
        )
        .values(
            balance=_counters.c.balance - totals.c.total,
            updated_at=_param(_counters, "updated_at", "now"),
        )
        .returning(_counters.c.license_id, (_counters.c.balance + totals.c.total).label("before"))
        .cte("taken")
    )
    entries = {
        "id": ordered.c.entry_id,
        "vendor_id": ordered.c.vendor,
        "license_id": ordered.c.license,
        "kind": literal("consume", _ledger.c.kind.type),
        "delta": -ordered.c.units,
        "balance_after": taken.c.before - ordered.c.upto,
        "key": ordered.c.key,
        "actor_id": ordered.c.actor,
        "at": _param(_ledger, "at", "now"),
    }
    rows = select(*entries.values()).select_from(
        ordered.join(taken, taken.c.license_id == ordered.c.license)
    )
    return (
        insert(_ledger)
        .from_select(list(entries), rows)
        .returning(_ledger.c.id, _ledger.c.balance_after)
        .add_cte(ordered, totals, taken)
    )


_CONSUME_MANY = _consume_many_statement()


def consume_many(
    connection: CoreConnection, claims: list[UnitsClaim], *, now: datetime
) -> list[Taken | None]:
    """PostgreSQL only: :func:`consume_at_once` for several claims in one statement
    (one round trip, one commit, the counter's row lock taken once). Per counter, all
    of its claims are taken or none (None for each: :func:`consume` then decides, as
    after :func:`consume_at_once`). A key may appear once per counter in ``claims``;
    a key another consumption committed meanwhile fails the statement
    (IntegrityError), having taken nothing."""
    entry_ids = sorted(new_id() for _ in claims)  # the ledger's (at, id) order: the batch's
    parameters = {
        "entry_ids": entry_ids,
        "licenses": [claim.license_id for claim in claims],
        "vendors": [claim.vendor_id for claim in claims],
        "actors": [claim.actor_id for claim in claims],
        "units_each": [claim.units for claim in claims],
        "keys": [claim.key for claim in claims],
        "lows": [claim.low_balance for claim in claims],
        "now": now,
    }
    rows = connection.execute(_CONSUME_MANY, parameters).all()
    taken = {row.id: int(row.balance_after) for row in rows}
    return [
        Taken(entry_id, taken[entry_id]) if entry_id in taken else None for entry_id in entry_ids
    ]
