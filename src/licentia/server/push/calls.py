"""Opening a push stream: who asks, and for which container.

A device proves itself as in every exchange of the device protocol: a request signed
with its key (``op`` ``listen``, checked as ``activation.messages.read_request``
checks any request, so it is at most minutes old), sent as the body, never in the
URL. A cloud container's device presents its token in ``Authorization``. Either way
the stream is bound to the container the credential belongs to: a device can hear of
its own changes only.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select

from licentia.domain.errors import NotFoundError, ValidationError
from licentia.server.activation.calls import DeviceMessage
from licentia.server.activation.messages import read_request
from licentia.server.cloud import protocol
from licentia.server.cloud.protocol import Presented
from licentia.server.db.base import utcnow
from licentia.server.db.runner import Runner
from licentia.server.devices.models import Device
from licentia.server.devices.services import BLACKLISTED, DeviceBlacklistedError
from licentia.server.push.changes import address_of_container, address_of_device
from licentia.server.push.hub import PushHub, Subscription
from licentia.server.tenancy.models import Vendor

LISTEN = "listen"
_DEVICE = (
    select(Device.id, Device.status)
    .join(Vendor, Vendor.id == Device.vendor_id)
    .where(Vendor.slug == bindparam("slug"), Device.key_id == bindparam("key_id"))
)


@dataclass(frozen=True)
class StreamTimes:
    """How long a stream lasts before the client opens a new one (it is then
    authenticated again), and how long its client waits before reconnecting."""

    lasts_seconds: float
    retry_milliseconds: int = 3000


async def open_device_stream(runner: Runner, hub: PushHub, message: DeviceMessage) -> Subscription:
    """The subscription of the device that signed ``message`` (a ``listen`` request).

    Raises DeviceSignatureError, ValidationError (``REQUEST_EXPIRED``, or ``op`` not
    ``listen``), NotFoundError (``DEVICE_NOT_FOUND``: the key never activated here),
    DeviceBlacklistedError, and the hub's StreamsFullError or DeviceStreamsFullError.
    """
    request = read_request(message.token, message.vendor_slug, utcnow())
    if request.op != LISTEN:
        raise ValidationError("a push stream is opened with a 'listen' request", field="op")
    parameters = {"slug": message.vendor_slug, "key_id": request.device_id}
    found = await runner.read(lambda c: c.execute(_DEVICE, parameters).first())
    if found is None:
        raise NotFoundError("device", request.device_id, code="DEVICE_NOT_FOUND")
    if found.status == BLACKLISTED:
        raise DeviceBlacklistedError("this device is blacklisted by the vendor")
    return hub.subscribe(address_of_device(found.id))


async def open_container_stream(runner: Runner, hub: PushHub, who: Presented) -> Subscription:
    """The subscription of the cloud container whose device token ``who`` presents.

    Raises what the cloud protocol's authentication raises (an unknown or revoked
    token, a deregistered device), and the hub's StreamsFullError or
    DeviceStreamsFullError."""
    access = await runner.read(lambda c: protocol.authenticate(c, who))
    return hub.subscribe(address_of_container(access.container_id))


def events(subscription: Subscription, times: StreamTimes) -> AsyncIterator[dict[str, Any]]:
    """The stream's events (:func:`_events`). The subscription is closed when they
    end, and also when the stream is dropped before it ever started (a client gone
    before the answer began): its place must not stay taken."""
    stream = _events(subscription, times)
    weakref.finalize(stream, subscription.close)
    return stream


async def _events(subscription: Subscription, times: StreamTimes) -> AsyncIterator[dict[str, Any]]:
    """The stream's events: ``ready`` once the subscription is in place (the client
    syncs then, catching any change made before it listened), then one ``changed``
    per wake-up, until ``times.lasts_seconds`` have passed or the hub closes it."""
    loop = asyncio.get_running_loop()
    ends = loop.time() + times.lasts_seconds
    try:
        yield {"event": "ready", "data": "{}", "retry": times.retry_milliseconds}
        while not subscription.closed:
            left = ends - loop.time()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(subscription.changed.wait(), left)
            except TimeoutError:
                return
            subscription.changed.clear()
            if not subscription.closed:
                yield {"event": "changed", "data": "{}"}
    finally:
        subscription.close()
