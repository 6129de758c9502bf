"""Activation by file, for a computer without internet: the three-step round trip
(request → update → receipt) and the return of a license, through the same device
protocol calls the API answers (``activation.calls``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from licentia.domain.errors import LicentiaError, ValidationError
from licentia.formats.jws import SignatureInvalidError
from licentia.server.activation import calls
from licentia.server.activation.calls import DeviceMessage
from licentia.server.activation.messages import MAX_MESSAGE_BYTES
from licentia.server.rate_limits.families import Family, limited
from licentia.server.web import units
from licentia.server.web.errors import Problem, Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.portal.pages import storefront
from licentia.server.web.rendering import pages_of

router = APIRouter(
    prefix="/portal",
    include_in_schema=False,
    dependencies=FORM_CHECKS,
    max_body_size=units.FORM_WITH_FILE,
)
MAX_FILE = MAX_MESSAGE_BYTES
UPDATE_FILE = "licentia-update.jws"


def _page(request: Request, slug: str, status_code: int = 200, **values: Any) -> Response:
    front = storefront(request, slug)
    settings = units.backend_of(request).settings
    values.setdefault("problems", Problems())
    return pages_of(request).render(
        request,
        "portal/offline.html",
        status_code=status_code,
        brand=front.brand,
        front=front,
        customer=front.customer,
        server=settings.public_url,
        **values,
    )


@router.get("/{slug}/offline", response_class=HTMLResponse)
async def offline(slug: str, request: Request) -> Response:
    return await run_in_threadpool(_page, request, slug)


async def _read(upload: UploadFile | None) -> bytes:
    return await upload.read(MAX_FILE + 1) if upload is not None else b""


def _message(content: bytes, field: str) -> str:
    """The compact JWS in an uploaded file; ValidationError for none, too large or
    not text."""
    if not content.strip():
        raise ValidationError("choose the file to upload", field=field, code="FILE_MISSING")
    if len(content) > MAX_FILE:
        raise ValidationError("this file is too large for a Licentia file", field=field)
    try:
        return content.decode("ascii").strip()
    except UnicodeDecodeError:
        raise SignatureInvalidError("not a Licentia file") from None


async def _upload(
    slug: str,
    request: Request,
    content: bytes,
    field: str,
    answer: Callable[[DeviceMessage], Awaitable[Response]],
) -> Response:
    """Read the uploaded file's content, let ``answer`` act on it; any refusal goes
    next to the field it came from, with its code."""
    try:
        token = _message(content, field)
        source_ip = request.client.host if request.client else None
        await run_in_threadpool(storefront, request, slug)  # an unknown vendor: 404 page
        return await answer(DeviceMessage(slug, token, source_ip))
    except (LicentiaError, SignatureInvalidError) as error:
        problems = Problems()
        gettext = pages_of(request).gettext_for(request).gettext
        if isinstance(error, LicentiaError):
            problems.add(problem_of(error, gettext, field=field))
        else:
            sentence = gettext("This file is damaged or was not made by the Licentia software.")
            problems.add(Problem(error.code, sentence, field=field))
        status = status_of(error)
        return await run_in_threadpool(lambda: _page(request, slug, status, problems=problems))


@router.post("/{slug}/offline/request")
@limited(Family.ACTIVATION)
async def process_request(
    slug: str, request: Request, request_file: UploadFile | None = File(None)
) -> Response:
    """Step 1: the request file in, the update file out (a download)."""
    backend = units.backend_of(request)

    async def answer(message: DeviceMessage) -> Response:
        issued = await calls.process_offline_request(backend.runner, backend.master, message)
        disposition = f'attachment; filename="{UPDATE_FILE}"'
        headers = {"Content-Disposition": disposition}
        return Response(issued.token, media_type="application/jose", headers=headers)

    return await _upload(slug, request, await _read(request_file), "request_file", answer)


@router.post("/{slug}/offline/receipt", response_class=HTMLResponse)
async def confirm_receipt(
    slug: str, request: Request, receipt_file: UploadFile | None = File(None)
) -> Response:
    """Step 3: the receipt confirms the update is on the computer."""
    backend = units.backend_of(request)

    async def answer(message: DeviceMessage) -> Response:
        seq = await calls.confirm_receipt(backend.runner, backend.master, message)
        return await run_in_threadpool(lambda: _page(request, slug, confirmed=seq))

    return await _upload(slug, request, await _read(receipt_file), "receipt_file", answer)


@router.post("/{slug}/offline/return", response_class=HTMLResponse)
async def preview_return(
    slug: str, request: Request, return_file: UploadFile | None = File(None)
) -> Response:
    """A return proof, read first: the page says which license it frees, from which
    computer, and how many moves its transfer limit leaves, and asks to confirm."""
    backend = units.backend_of(request)

    async def answer(message: DeviceMessage) -> Response:
        preview = await calls.preview_return(backend.runner, backend.master, message)
        return await run_in_threadpool(
            lambda: _page(request, slug, preview=preview, return_token=message.token)
        )

    return await _upload(slug, request, await _read(return_file), "return_file", answer)


@router.post("/{slug}/offline/return/confirm", response_class=HTMLResponse)
async def return_license(slug: str, request: Request, return_token: str = Form("")) -> Response:
    """The confirmed return: the license becomes available for another computer."""
    backend = units.backend_of(request)

    async def answer(message: DeviceMessage) -> Response:
        returned = await calls.return_license(backend.runner, backend.master, message)
        return await run_in_threadpool(lambda: _page(request, slug, returned=returned))

    return await _upload(slug, request, return_token.encode(), "return_file", answer)
