"""Unit counters: consume atomically and idempotently, top up, reset.

The balance lives in one row and changes only through a conditional UPDATE
(``balance >= units``), so concurrent consumers can never drive it below zero.
Every change is a ledger row; a consumption's key is unique per counter, so the
same key never counts twice, even if the first answer was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import ConflictError, NotFoundError, ValidationError
from licentia.domain.ids import new_id
from licentia.server.audit.services import record
from licentia.server.counters.models import LedgerEntry, UnitCounter
from licentia.server.licenses.models import License

LOW_BALANCE_SHARE = 0.1  # an event when the balance falls below 10 % of the initial units


@dataclass(frozen=True)
class Consumption:
    entry: LedgerEntry
    replayed: bool


def open_counter(session: Session, license_: License, now: datetime) -> None:
    """Create the license's counter with its initial units (if it has units, once)."""
    units = license_.options.get("units")
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
    threshold = int(int(license_.options.get("units") or 0) * LOW_BALANCE_SHARE)
    if balance < threshold <= balance + units:
        record(
            session,
            actor,
            "counter.low_balance",
            "license",
            license_.id,
            after={"balance": balance, "threshold": threshold},
        )
