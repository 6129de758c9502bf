"""Push streams: Server-Sent Events telling an online device its licenses changed.

``POST …/devices/events`` (body: a signed ``listen`` request) and ``POST
…/cloud/events`` (``Authorization: Bearer lcd_…``) answer ``text/event-stream``: a
``ready`` event once the stream listens, a ``changed`` event whenever the container
changes, a comment every ``LICENTIA_PUSH_KEEPALIVE_SECONDS``, and the end after
``LICENTIA_PUSH_STREAM_SECONDS`` (the client opens a new one). POST keeps every
credential out of the URL, which proxies and access logs record. docs/device-protocol.md
describes the stream, docs/operations.md its bounds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sse_starlette import EventSourceResponse

from licentia.server.activation.calls import DeviceMessage
from licentia.server.api.bodies import DEVICE_MESSAGE
from licentia.server.api.context import Services, app_services
from licentia.server.api.routes.cloud_devices import DeviceCall, device_call
from licentia.server.api.routes.devices import device_message
from licentia.server.api.schemas import JOSE_BODY
from licentia.server.push import calls
from licentia.server.push.calls import StreamTimes
from licentia.server.push.hub import Subscription

router = APIRouter(tags=["push"], max_body_size=DEVICE_MESSAGE)
_STREAM: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-Sent Events: `ready`, then `changed` whenever the container "
        "changes; keep-alive comments between them",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def _stream(services: Services, subscription: Subscription) -> EventSourceResponse:
    settings = services.settings
    times = StreamTimes(settings.push_stream_seconds)
    return EventSourceResponse(
        calls.events(subscription, times),
        ping=settings.push_keepalive_seconds,
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/vendors/{slug}/devices/events",
    response_class=EventSourceResponse,
    openapi_extra=JOSE_BODY,
    responses=_STREAM,
)
async def device_events(
    message: DeviceMessage = Depends(device_message),
    services: Services = Depends(app_services),
) -> EventSourceResponse:
    """A device container's push stream; the body is a device request with ``op``
    ``listen``. On ``ready`` and on ``changed`` the device syncs."""
    subscription = await calls.open_device_stream(services.runner, services.push, message)
    return _stream(services, subscription)


@router.post("/vendors/{slug}/cloud/events", response_class=EventSourceResponse, responses=_STREAM)
async def cloud_events(call: DeviceCall = Depends(device_call)) -> EventSourceResponse:
    """A cloud container's push stream, for a registered device: on ``changed`` the
    client asks again instead of using the access tokens it keeps."""
    services = call.services
    subscription = await calls.open_container_stream(services.runner, services.push, call.presented)
    return _stream(services, subscription)
