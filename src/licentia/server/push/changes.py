"""Which devices and cloud containers a transaction changed, told when it commits.

Every use case that changes a license, a device or a cloud container records it for
the audit log (``audit.services.record``). As the commit begins, those entries become
*addresses*: ``d:<device id>`` for a device container, ``c:<container id>`` for a cloud
container. After the commit, the addresses go to this process's hubs (registered per
engine with :func:`on_commit`); on PostgreSQL they are also sent with ``pg_notify``
inside the transaction, which PostgreSQL delivers to the other nodes only if the
transaction commits (``push.postgres``). Nothing here polls, and a rolled-back change
is never announced.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, bindparam, event, select, text
from sqlalchemy.orm import Session

from licentia.domain.actors import ActorKind
from licentia.server.audit.services import PENDING_EVENTS
from licentia.server.licenses.models import License

CHANNEL = "licentia_push"
NODE = uuid.uuid4().hex  # this process: it skips its own notifications, told locally
DEVICE, CONTAINER = "d:", "c:"
# A license that was only issued sits on no device yet; an order may issue thousands.
_SILENT_ACTIONS = frozenset({"license.issued"})
# What a device did itself (activate, return; a suspicion recorded while it synced) it
# learns from the answer of that very exchange: telling it would only make it sync again.
_DEVICE = ActorKind.DEVICE.value
_ADDRESSES = "licentia.push.addresses"
_NOTIFY_BYTES = 7000  # PostgreSQL's payload limit is 8000 bytes
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_HOLDERS = select(License.id, License.device_id, License.container_id).where(
    License.id.in_(bindparam("ids", expanding=True))
)

Listener = Callable[[frozenset[str]], None]
_listeners: WeakKeyDictionary[Engine, list[Listener]] = WeakKeyDictionary()
_lock = threading.Lock()


def on_commit(engine: Engine, listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with the addresses of every committed transaction of
    ``engine`` in this process (on the committing thread). Returns the undo."""
    with _lock:
        _listeners.setdefault(engine, []).append(listener)

    def remove() -> None:
        with _lock:
            listeners = _listeners.get(engine, [])
            if listener in listeners:
                listeners.remove(listener)

    return remove


def address_of_device(device_id: str) -> str:
    return DEVICE + device_id


def address_of_container(container_id: str) -> str:
    return CONTAINER + container_id


def encode(addresses: Iterable[str]) -> list[str]:
    """Notification payloads (``<node> <address> …``), each within PostgreSQL's limit."""
    payloads, current = [], [NODE]
    size = len(NODE)
    for address in sorted(addresses):
        if size + 1 + len(address) > _NOTIFY_BYTES:
            payloads.append(" ".join(current))
            current, size = [NODE], len(NODE)
        current.append(address)
        size += 1 + len(address)
    if len(current) > 1:
        payloads.append(" ".join(current))
    return payloads


def decode(payload: str) -> tuple[str, frozenset[str]]:
    """The sending node and the addresses of a notification payload."""
    node, *addresses = payload.split(" ")
    return node, frozenset(a for a in addresses if a.startswith((DEVICE, CONTAINER)))


# insert=True: before the audit log's listener, which takes the entries (and on
# PostgreSQL may send the COMMIT with its last statement).
@event.listens_for(Session, "before_commit", insert=True)
def _note_addresses(session: Session) -> None:
    session.info.pop(_ADDRESSES, None)
    noted: list[dict[str, Any]] | None = session.info.get(PENDING_EVENTS)
    if not noted:
        return
    addresses = _addresses(session, noted)
    if not addresses:
        return
    session.info[_ADDRESSES] = addresses
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        for payload in encode(addresses):
            connection.execute(_NOTIFY, {"channel": CHANNEL, "payload": payload})


@event.listens_for(Session, "after_commit")
def _tell_listeners(session: Session) -> None:
    addresses: frozenset[str] | None = session.info.pop(_ADDRESSES, None)
    if not addresses:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with _lock:
        listeners = list(_listeners.get(engine, ()))
    for listener in listeners:
        listener(addresses)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_ADDRESSES, None)


def _addresses(session: Session, noted: list[dict[str, Any]]) -> frozenset[str]:
    """The containers the entries touch: a device's or cloud container's own entries,
    and a license's changes of state (``license.*``; its counters and seats are no
    change of what a device holds). A license entry names its device in its views
    (``license_view``); a license on no device may be in a cloud container, which is
    read from its row (one statement, only then)."""
    found: set[str] = set()
    unplaced: list[str] = []
    for entry in noted:
        kind, object_id, action = entry["object_type"], entry["object_id"], entry["action"]
        if object_id is None or action in _SILENT_ACTIONS or entry["actor_type"] == _DEVICE:
            continue
        if kind == "device":
            found.add(address_of_device(object_id))
        elif kind == "cloud_container":
            found.add(address_of_container(object_id))
        elif kind == "license" and action.startswith("license."):
            devices: set[str] = {
                view["device_id"]
                for view in (entry["before"], entry["after"])
                if isinstance(view, dict) and isinstance(view.get("device_id"), str)
            }
            found.update(address_of_device(d) for d in devices)
            if not devices:
                unplaced.append(object_id)
    if unplaced:
        session.flush()
        for row in session.connection().execute(_HOLDERS, {"ids": unplaced}):
            if row.device_id is not None:
                found.add(address_of_device(row.device_id))
            if row.container_id is not None:
                found.add(address_of_container(row.container_id))
    return frozenset(found)
