"""The customer admin's cloud containers: the list, one container with its registered
devices, the deregistration of a device (``cloud.admin``, as the API's customer admin
routes call it), a new name for the container, and a new credential as its ``.licred``
file."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.cloud import admin
from licentia.server.cloud.licred import MEDIA_TYPE, licred_file, licred_filename
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.db.pagination import Page
from licentia.server.web import units
from licentia.server.web.errors import Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.portal.desk import PAGE_SIZE, Desk, desk_of, refused, render
from licentia.server.web.rendering import pages_of

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=FORM_CHECKS)


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


@router.post("/{slug}/containers/{container_id}/credential")
def reset_credential(
    slug: str, container_id: str, request: Request, understood: str = Form("")
) -> Response:
    """A new credential, answered as the container's ``.licred`` file (a download):
    the old file stops working, so the form asks to confirm that first."""
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    try:
        if understood != "yes":
            raise ValidationError(
                "confirm that the computers registered now must register again",
                field="understood",
            )
        issued = units.write(
            request, lambda s: admin.reset_credential(s, desk.container_admin(s, container_id))
        )
    except LicentiaError as error:
        problems = Problems()
        problems.add(problem_of(error, pages_of(request).gettext_for(request).gettext))
        return _container_page(request, desk, container_id, "", problems, status_of(error))
    server_url = units.backend_of(request).settings.public_url
    headers = {
        "Content-Disposition": f'attachment; filename="{licred_filename(issued.container.name)}"'
    }
    return Response(licred_file(issued, server_url, slug), media_type=MEDIA_TYPE, headers=headers)
