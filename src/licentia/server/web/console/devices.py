"""Console: devices. A list filtered by status and by flag (clone suspected,
manipulation suspected…), a device's detail with its flags, licenses and history, and
the vendor's actions: clear the flags after a review, blacklist, deactivate. The same
use cases as ``api/routes/devices.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.db.pagination import paginate
from licentia.server.devices import services as devices
from licentia.server.devices.models import Device
from licentia.server.web import units
from licentia.server.web.console.frame import (
    filters_of,
    history_of,
    limit_of,
    next_page,
    problems_of,
    render,
    require_staff,
)
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
ACTIONS = {
    "clear-flags": devices.clear_flags,
    "blacklist": devices.blacklist_device,
    "deactivate": devices.deactivate_device,
}


@dataclass(frozen=True)
class DeviceRow:
    """A device as the list shows it, with its active flags."""

    device: Device
    flags: list[str]


@router.get("/devices", response_class=HTMLResponse)
def device_list(request: Request, cursor: str | None = None) -> Response:
    actor = require_staff(request, "licenses:read")
    chosen = filters_of(request, ("status", "flag"))
    problems, more = Problems(), None
    items: list[DeviceRow] = []

    def work(session: units.DbSession) -> tuple[list[DeviceRow], str | None]:
        query = devices.devices_query(actor, chosen.get("status"), flag=chosen.get("flag"))
        page = paginate(session, query, Device.id, cursor=cursor, limit=limit_of(request))
        flags = devices.flags_of(session, [device.id for device in page.items])
        return [DeviceRow(d, flags[d.id]) for d in page.items], page.next_cursor

    try:
        items, cursor_after = units.read(request, work)
        more = next_page(request, cursor_after)
    except ValidationError as error:
        problems = problems_of(request, error)
    return render(
        request,
        actor,
        "console/devices.html",
        status_code=422 if problems else 200,
        items=items,
        filters=chosen,
        statuses=devices.STATUSES,
        flags=(devices.ANY_FLAG, *devices.FLAG_KINDS),
        next_page=more,
        problems=problems,
    )


def _detail(
    request: Request, device_id: str, *, problems: Problems, status_code: int = 200
) -> Response:
    actor = require_staff(request, "licenses:read")

    def work(session: units.DbSession) -> dict[str, Any]:
        device = devices.get_device(session, actor, device_id)
        return {
            "item": device,
            "flags": devices.active_flags(session, device.id),
            "held": devices.device_licenses(session, device.id),
            "history": history_of(session, actor, "device", device.id),
        }

    found = units.read(request, work)
    return render(
        request,
        actor,
        "console/device.html",
        status_code=status_code,
        problems=problems,
        done=request.query_params.get("done"),
        **found,
    )


@router.get("/devices/{device_id}", response_class=HTMLResponse)
def device_detail(device_id: str, request: Request) -> Response:
    return _detail(request, device_id, problems=Problems())


@router.post("/devices/{device_id}/{action}", response_class=HTMLResponse)
def act_on_device(
    device_id: str,
    action: Literal["clear-flags", "blacklist", "deactivate"],
    request: Request,
) -> Response:
    actor = require_staff(request, "licenses:write")
    act = ACTIONS[action]
    try:
        units.write(request, lambda s: act(s, actor, device_id))
    except LicentiaError as error:
        problems = problems_of(request, error)
        return _detail(request, device_id, problems=problems, status_code=status_of(error))
    return RedirectResponse(f"/console/devices/{device_id}?done={action}", status_code=303)
