"""The transactional outbox: an event for each change of the catalogue, written in the
change's own transaction.

Every use case records its changes for the audit log (``audit.services.record``); the
audit entries of a transaction wait in the session until it commits. As the commit
begins, before the audit log's own step, those whose action is an event of the
catalogue become rows of ``webhook_events`` in the same transaction: the event exists
if and only if the change does, and a use case has nothing more to do to emit one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from licentia.domain.actors import OPERATOR_CHAIN
from licentia.domain.ids import new_id
from licentia.domain.webhooks import EVENT_TYPES
from licentia.server.audit.services import PENDING_EVENTS
from licentia.server.db.base import utcnow
from licentia.server.webhooks.models import WebhookEvent

_CATALOGUE = frozenset(EVENT_TYPES)
_INSERT = insert(WebhookEvent)


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


def _emitted(entry: dict[str, Any]) -> bool:
    return entry["action"] in _CATALOGUE and entry["chain"] != OPERATOR_CHAIN


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    event_id = new_id()
    data = {"id": entry["object_id"], **(entry["after"] or {})}
    return {
        "id": event_id,
        "vendor_id": entry["chain"],
        "type": entry["action"],
        "object_type": entry["object_type"],
        "object_id": entry["object_id"],
        "payload": payload(event_id, entry["action"], now.isoformat(), data),
        "created_at": now,
        "dispatched": False,
    }


def payload(event_id: str, event_type: str, timestamp: str, data: dict[str, Any]) -> dict[str, Any]:
    """An event's body as Standard Webhooks shapes it: ``type``, ``timestamp``, ``data``."""
    return {"id": event_id, "type": event_type, "timestamp": timestamp, "data": data}
