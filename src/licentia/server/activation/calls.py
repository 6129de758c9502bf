"""The device protocol's calls, each one unit of work (docs/device-protocol.md).

A device sends a compact JWS to its vendor's endpoint; each function here takes what
it sent (:class:`DeviceMessage`), runs the activation service that answers it in one
write transaction, and returns the service's answer. A suspicion the service records
(``Refused``) is committed first and raised after, so the vendor sees the flag
however the device reacts.

Most syncs find the device current: :func:`sync` answers those from one read
(:func:`sync_unchanged`, :mod:`licentia.server.activation.unchanged`) and runs the
full sync (:func:`sync_in_full`) for everything else; the two agree on every device
the read answers for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.orm import Session

from licentia.domain.errors import LicentiaError
from licentia.server.activation import services
from licentia.server.activation.messages import DeviceRequest, read_request
from licentia.server.activation.services import (
    SEEN_GRANULARITY,
    Exchange,
    NotModified,
    Refused,
    ReturnPreview,
    UpdateIssued,
)
from licentia.server.activation.unchanged import Unchanged, check_unchanged
from licentia.server.db.base import utcnow
from licentia.server.db.runner import Runner, in_thread
from licentia.server.devices.services import record_visit
from licentia.server.keys.master import MasterKey

T = TypeVar("T")


@dataclass(frozen=True)
class DeviceMessage:
    """What a device sent: to which vendor (its slug), the compact JWS, from where."""

    vendor_slug: str
    token: str
    source_ip: str | None = None


@dataclass(frozen=True)
class Returned:
    """A license given back: its id and its state now."""

    license_id: str
    state: str


async def activate(runner: Runner, master: MasterKey, message: DeviceMessage) -> UpdateIssued:
    """Online activation (a request with a ticket code); raises as
    :func:`licentia.server.activation.services.activate`."""
    result = await _answer_request(runner, master, message, services.activate)
    assert isinstance(result, UpdateIssued)
    return result


async def sync(
    runner: Runner, master: MasterKey, message: DeviceMessage, *, conditional: bool
) -> UpdateIssued | NotModified:
    """Renewed leases and every change since the last sync; with ``conditional``,
    NotModified when the device is current (most often from one read)."""
    if conditional:
        unchanged = await sync_unchanged(runner, message)
        if unchanged is not None:
            return unchanged
    return await sync_in_full(runner, master, message, conditional=conditional)


async def sync_unchanged(runner: Runner, message: DeviceMessage) -> Unchanged | None:
    """The fast path of a conditional sync: NotModified from one read (recording the
    visit when due), or None when the full sync must run. None also on any error,
    which the full sync then reports exactly as it always did."""
    now = utcnow()
    try:
        request = read_request(message.token, message.vendor_slug, now)
    except LicentiaError:
        return None
    slug = message.vendor_slug
    unchanged = await runner.read(lambda c: check_unchanged(c, slug, request, now))
    if unchanged is not None and unchanged.needs_write:
        device_id, confirms = unchanged.device_id, unchanged.confirms
        await runner.transaction(
            lambda session: record_visit(
                session, device_id, now, seen_granularity=SEEN_GRANULARITY, confirms=confirms
            )
        )
    return unchanged


async def sync_in_full(
    runner: Runner, master: MasterKey, message: DeviceMessage, *, conditional: bool
) -> UpdateIssued | NotModified:
    """The full path of a sync: the device locked, checked, confirmed and renewed."""

    def handle(session: Session, ex: Exchange, request: DeviceRequest) -> object:
        return services.sync(session, ex, request, conditional=conditional)

    result = await _answer_request(runner, master, message, handle)
    assert isinstance(result, UpdateIssued | NotModified)
    return result


async def process_offline_request(
    runner: Runner, master: MasterKey, message: DeviceMessage
) -> UpdateIssued:
    """A request file from a machine without internet; answers the update file."""
    result = await _answer_request(runner, master, message, services.process_offline_request)
    assert isinstance(result, UpdateIssued)
    return result


async def confirm_receipt(runner: Runner, master: MasterKey, message: DeviceMessage) -> int:
    """Record a receipt; returns the sequence it confirms. A mismatch flags the device
    and raises ``RECEIPT_MISMATCH``."""

    def work(session: Session) -> int | Refused:
        return services.confirm_receipt(session, _exchange(session, master, message), message.token)

    result = _accepted(await runner.transaction(work))
    assert isinstance(result, int)
    return result


async def return_license(runner: Runner, master: MasterKey, message: DeviceMessage) -> Returned:
    """A return proof: the license becomes available again (transfer limit permitting)."""

    def work(session: Session) -> Returned:
        ex = _exchange(session, master, message)
        license_ = services.return_license(session, ex, message.token)
        return Returned(license_.id, license_.state)

    return await runner.transaction(work)


async def preview_return(
    runner: Runner, master: MasterKey, message: DeviceMessage
) -> ReturnPreview:
    """What a return proof would do, checked as :func:`return_license` checks it, in a
    read that changes nothing (the License Portal shows it before the customer acts)."""

    def work() -> ReturnPreview:
        with runner.db.read() as session:
            ex = _exchange(session, master, message)
            return services.preview_return(session, ex, message.token)

    return await in_thread(work)


def _exchange(session: Session, master: MasterKey, message: DeviceMessage) -> Exchange:
    return Exchange(session, master, message.vendor_slug, source_ip=message.source_ip)


async def _answer_request(
    runner: Runner,
    master: MasterKey,
    message: DeviceMessage,
    handle: Callable[[Session, Exchange, DeviceRequest], object],
) -> object:
    """Read the device request and let ``handle`` act on it, in one unit of work."""

    def work(session: Session) -> object:
        ex = _exchange(session, master, message)
        return handle(session, ex, read_request(message.token, message.vendor_slug, ex.now))

    return _accepted(await runner.transaction(work))


def _accepted(result: T) -> T:
    if isinstance(result, Refused):
        raise result.error  # the flag it carries is committed already
    return result
