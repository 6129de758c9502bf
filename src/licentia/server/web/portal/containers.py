"""The customer admin's cloud containers: the list, one container with its registered
devices, the deregistration of a device (``cloud.admin``, as the API's customer admin
routes call it) and a new name for the container."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import LicentiaError
from licentia.server.cloud import admin
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.db.pagination import Page
from licentia.server.web import units
from licentia.server.web.csrf import check_csrf
from licentia.server.web.errors import Problems
from licentia.server.web.portal.desk import PAGE_SIZE, Desk, desk_of, refused, render

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/{slug}/containers", response_class=HTMLResponse)
def list_containers(slug: str, request: Request, cursor: str = "") -> Response:
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    who = desk.who
    page = units.read(
        request,
        lambda s: admin.customer_containers(
            s, who.vendor_id, who.customer_id, cursor=cursor or None, limit=PAGE_SIZE
        ),
    )
    return render(request, desk, "portal/containers.html", page=page)


def _container_page(
    request: Request,
    desk: Desk,
    container_id: str,
    cursor: str,
    problems: Problems | None = None,
    status_code: int = 200,
    typed_name: str | None = None,
) -> Response:
    def work(session: units.DbSession) -> tuple[CloudContainer, Page[CloudDevice]]:
        opened = desk.container_admin(session, container_id)
        devices = admin.devices(session, opened, cursor=cursor or None, limit=PAGE_SIZE)
        return opened.container, devices

    container, devices = units.read(request, work)
    return render(
        request,
        desk,
        "portal/container.html",
        status_code=status_code,
        container=container,
        devices=devices,
        typed_name=container.name if typed_name is None else typed_name,
        problems=problems or Problems(),
    )


@router.get("/{slug}/containers/{container_id}", response_class=HTMLResponse)
def show_container(slug: str, container_id: str, request: Request, cursor: str = "") -> Response:
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    return _container_page(request, desk, container_id, cursor)


@router.post("/{slug}/containers/{container_id}/devices/{device_id}/deregister")
def deregister_device(slug: str, container_id: str, device_id: str, request: Request) -> Response:
    """Free the device's place in the container; its token stops working at once."""
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    try:
        units.write(
            request,
            lambda s: admin.deregister_device(s, desk.container_admin(s, container_id), device_id),
        )
    except LicentiaError as error:
        problems, status = refused(error, request)
        return _container_page(request, desk, container_id, "", problems, status)
    return RedirectResponse(f"/portal/{slug}/containers/{container_id}", status_code=303)


@router.post("/{slug}/containers/{container_id}/name")
def rename_container(
    slug: str, container_id: str, request: Request, name: str = Form("")
) -> Response:
    """The name the company's users know the container by."""
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    try:
        units.write(
            request,
            lambda s: admin.rename_container(s, desk.container_admin(s, container_id), name),
        )
    except LicentiaError as error:
        problems, status = refused(error, request)
        return _container_page(request, desk, container_id, "", problems, status, name)
    return RedirectResponse(f"/portal/{slug}/containers/{container_id}", status_code=303)
