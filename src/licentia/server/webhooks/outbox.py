"""The transactional outbox: an event for each change of the catalogue, written in the
change's own transaction.

Every use case records its changes for the audit log (``audit.services.record``); the
audit entries of a transaction wait in the session until it commits. As the commit
begins, before the audit log's own step, those whose action is an event of the
catalogue become rows of ``webhook_events`` in the same transaction: the event exists
if and only if the change does, and a use case has nothing more to do to emit one.

After a transaction that wrote events commits, the delivery loops of this process
registered for its engine (:func:`on_commit`) are woken, so that an event leaves
without waiting for the next poll; events written by other processes are found by
the poll (``LICENTIA_WEBHOOK_POLL_SECONDS``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, event, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from licentia.domain.actors import OPERATOR_CHAIN
from licentia.domain.ids import new_id
from licentia.domain.webhooks import EVENT_OF_ACTION
from licentia.server.audit.services import PENDING_EVENTS
from licentia.server.db.base import utcnow
from licentia.server.webhooks.models import WebhookEvent

_INSERT = insert(WebhookEvent)
_WROTE = "licentia.webhooks.wrote"  # session.info: this transaction wrote events

Waker = Callable[[], None]
_wakers: WeakKeyDictionary[Engine, list[Waker]] = WeakKeyDictionary()
_lock = threading.Lock()


def on_commit(engine: Engine, waker: Waker) -> Callable[[], None]:
    """Call ``waker`` after every transaction of ``engine`` in this process that wrote
    events has committed (on the committing thread: it must only signal). Returns the
    undo."""
    with _lock:
        _wakers.setdefault(engine, []).append(waker)

    def remove() -> None:
        with _lock:
            wakers = _wakers.get(engine, [])
            if waker in wakers:
                wakers.remove(waker)

    return remove


def wrote_events(session: Session) -> None:
    """Note that the session's transaction wrote events: its commit wakes the delivery
    loops. The outbox's own writes note it; code that inserts events itself (a
    benchmark) calls this."""
    session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _wake(session: Session) -> None:
    if not session.info.pop(_WROTE, False):
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _lock:
        wakers = list(_wakers.get(engine, ()))
    for waker in wakers:
        waker()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_WROTE, None)


# insert=True: this runs before the audit log's listener, which takes the entries.
@event.listens_for(Session, "before_commit", insert=True)
def _write_events(session: Session) -> None:
    noted: list[dict[str, Any]] | None = session.info.get(PENDING_EVENTS)
    if not noted:
        return
    rows = [_row(entry) for entry in noted if _emitted(entry)]
    if not rows:
        return
    session.flush()  # the change first: the events follow it, in record order
    session.connection().execute(_INSERT, rows)
    wrote_events(session)


def _emitted(entry: dict[str, Any]) -> bool:
    return entry["action"] in EVENT_OF_ACTION and entry["chain"] != OPERATOR_CHAIN


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    data = {"id": entry["object_id"], **(entry["after"] or {})}
    return _event_row(
        entry["chain"],
        EVENT_OF_ACTION[entry["action"]],
        entry["object_type"],
        entry["object_id"],
        data,
    )


def _event_row(
    vendor_id: str,
    event_type: str,
    object_type: str,
    object_id: str | None,
    data: dict[str, Any],
    once_key: str | None = None,
) -> dict[str, Any]:
    now = utcnow()
    event_id = new_id()
    return {
        "id": event_id,
        "vendor_id": vendor_id,
        "type": event_type,
        "object_type": object_type,
        "object_id": object_id,
        "payload": payload(event_id, event_type, now.isoformat(), data),
        "created_at": now,
        "dispatched": False,
        "once_key": once_key,
    }


def emit_once(
    session: Session,
    once_key: str,
    *,
    vendor_id: str,
    event_type: str,
    object_type: str,
    object_id: str,
    data: dict[str, Any],
) -> bool:
    """Write an event that has no audit entry, in the session's transaction, unless an
    event with ``once_key`` exists already; returns whether it wrote one. Of two
    transactions writing the same key at once, one writes and the other waits for it
    to end, then writes nothing (a unique index); once that one has committed, a look
    up by the key (no wait) answers every later caller."""
    known = select(WebhookEvent.seq).where(WebhookEvent.once_key == once_key)
    if session.scalar(known) is not None:
        return False
    row = _event_row(vendor_id, event_type, object_type, object_id, data, once_key)
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    written = session.execute(
        upsert(WebhookEvent)
        .values(row)
        .on_conflict_do_nothing(
            index_elements=["once_key"], index_where=WebhookEvent.once_key.is_not(None)
        )
        .returning(WebhookEvent.seq)
    ).first()
    if written is None:
        return False
    wrote_events(session)
    return True


def payload(event_id: str, event_type: str, timestamp: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event's body as Standard Webhooks shapes it: ``type``, ``timestamp``, ``data``."""
    return {"id": event_id, "type": event_type, "timestamp": timestamp, "data": data}
