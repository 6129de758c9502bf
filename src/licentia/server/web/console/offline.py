"""Console: the vendor's side of the offline round trip, for a customer who sends the
files by e-mail or on a stick. A request file in, the update file out (a download);
a receipt or a return file accepted. The same use cases as the device protocol's
offline endpoints (``activation/calls.py``), addressed to the staff member's vendor: a
file made for another vendor is refused by its audience."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, ValidationError
from licentia.server.activation import calls
from licentia.server.activation.calls import DeviceMessage
from licentia.server.activation.messages import MAX_MESSAGE_BYTES
from licentia.server.web import units
from licentia.server.web.console.frame import brand_of, problems_of, render, require_staff
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(
    prefix="/console",
    include_in_schema=False,
    dependencies=FORM_CHECKS,
    max_body_size=units.FORM_WITH_FILE,
)
MAX_FILE = MAX_MESSAGE_BYTES  # what the device endpoints take
UPDATE_FILE = "licentia-update.jws"


@router.get("/offline", response_class=HTMLResponse)
def offline_page(request: Request) -> Response:
    actor = require_staff(request, "licenses:read")
    return render(request, actor, "console/offline.html", problems=Problems(), outcome=None)


async def _message(
    request: Request, actor: Actor, upload: UploadFile | None, field: str
) -> DeviceMessage:
    """The uploaded file as a device message to the staff member's vendor."""
    body = await upload.read(MAX_FILE + 1) if upload is not None else b""
    if len(body) > MAX_FILE:
        raise ValidationError("this file is too large to be a Licentia file", field=field)
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError as error:
        raise ValidationError("this is not a Licentia file", field=field) from error
    if not token:
        raise ValidationError("choose a file", field=field)
    brand = await run_in_threadpool(brand_of, request, actor)
    source_ip = request.client.host if request.client else None
    return DeviceMessage(brand.vendor_slug, token, source_ip)


async def _page(
    request: Request, actor: Actor, *, problems: Problems, outcome: Any, status_code: int = 200
) -> Response:
    return await run_in_threadpool(
        render,
        request,
        actor,
        "console/offline.html",
        status_code=status_code,
        problems=problems,
        outcome=outcome,
    )


async def _refused(request: Request, actor: Actor, error: LicentiaError, field: str) -> Response:
    problems = problems_of(request, error, field=field)
    return await _page(
        request, actor, problems=problems, outcome=None, status_code=status_of(error)
    )


async def _writer(request: Request) -> Actor:
    # The CSRF check has read the session already; this reads it from the request.
    return await run_in_threadpool(require_staff, request, "licenses:write")


@router.post("/offline/request", response_class=HTMLResponse)
async def process_request(
    request: Request, request_file: UploadFile | None = File(None)
) -> Response:
    """Answers the update file as a download, so the page stays where it was."""
    actor = await _writer(request)
    backend = units.backend_of(request)
    try:
        message = await _message(request, actor, request_file, "request_file")
        issued = await calls.process_offline_request(backend.runner, backend.master, message)
    except LicentiaError as error:
        return await _refused(request, actor, error, "request_file")
    return Response(
        issued.token + "\n",
        media_type="application/jose",
        headers={
            "Content-Disposition": f'attachment; filename="{UPDATE_FILE}"',
            "X-Licentia-Seq": str(issued.seq),
        },
    )


@router.post("/offline/receipt", response_class=HTMLResponse)
async def accept_receipt(
    request: Request, receipt_file: UploadFile | None = File(None)
) -> Response:
    actor = await _writer(request)
    backend = units.backend_of(request)
    try:
        message = await _message(request, actor, receipt_file, "receipt_file")
        confirmed = await calls.confirm_receipt(backend.runner, backend.master, message)
    except LicentiaError as error:
        return await _refused(request, actor, error, "receipt_file")
    outcome = {"kind": "receipt", "confirmed": confirmed}
    return await _page(request, actor, problems=Problems(), outcome=outcome)


@router.post("/offline/return", response_class=HTMLResponse)
async def accept_return(request: Request, return_file: UploadFile | None = File(None)) -> Response:
    actor = await _writer(request)
    backend = units.backend_of(request)
    try:
        message = await _message(request, actor, return_file, "return_file")
        returned = await calls.return_license(backend.runner, backend.master, message)
    except LicentiaError as error:
        return await _refused(request, actor, error, "return_file")
    outcome = {"kind": "return", "license_id": returned.license_id, "state": returned.state}
    return await _page(request, actor, problems=Problems(), outcome=outcome)
