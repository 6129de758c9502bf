"""Console: API keys (for the vendor's ERP, CRM or shop) and signing keys. An API key is
created with its scopes and its secret shown on the answer to that one request, never
again (the page is sent with ``Cache-Control: no-store``); keys are revoked and show
when they were last used. Signing keys are rotated and retired. The same use cases as
``api/routes/keys.py``."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError, NotFoundError, ValidationError
from licentia.domain.scopes import SCOPES
from licentia.server.db.pagination import paginate
from licentia.server.keys import services as keys
from licentia.server.tenancy import services as tenancy
from licentia.server.tenancy.models import ApiKey
from licentia.server.web import units
from licentia.server.web.console.confirmations import (
    Confirmation,
    check_understood,
    confirmation_page,
)
from licentia.server.web.console.frame import (
    limit_of,
    next_page,
    problems_of,
    render,
    require_staff,
    vendor_id_of,
)
from licentia.server.web.console.staff import gettext_of
from licentia.server.web.errors import Problems, status_of
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)


def _api_keys_page(
    request: Request,
    actor: Actor,
    *,
    cursor: str | None = None,
    problems: Problems | None = None,
    values: dict[str, object] | None = None,
    issued: tenancy.IssuedApiKey | None = None,
    status_code: int = 200,
) -> Response:
    query, limit = tenancy.api_keys_query(vendor_id_of(actor)), limit_of(request)
    page = units.read(request, lambda s: paginate(s, query, ApiKey.id, cursor=cursor, limit=limit))
    response = render(
        request,
        actor,
        "console/api_keys.html",
        status_code=status_code,
        items=page.items,
        next_page=next_page(request, page.next_cursor),
        scopes=SCOPES,
        problems=problems or Problems(),
        values=values or {"name": "", "scopes": []},
        issued=issued,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/api-keys", response_class=HTMLResponse)
def api_keys(request: Request, cursor: str | None = None) -> Response:
    actor = require_staff(request, "keys:read")
    return _api_keys_page(request, actor, cursor=cursor)


@router.post("/api-keys", response_class=HTMLResponse)
def create_api_key(
    request: Request, name: str = Form(""), scopes: list[str] = Form([])
) -> Response:
    actor = require_staff(request, "keys:write")
    try:
        issued = units.write(
            request,
            lambda s: tenancy.create_api_key(
                s, actor, vendor_id_of(actor), name=name.strip(), scopes=scopes
            ),
        )
    except LicentiaError as error:
        return _api_keys_page(
            request,
            actor,
            problems=problems_of(request, error),
            values={"name": name, "scopes": scopes},
            status_code=status_of(error),
        )
    return _api_keys_page(request, actor, issued=issued, status_code=201)


def _api_key(request: Request, actor: Actor, key_id: str) -> ApiKey:
    found = units.read(request, lambda s: tenancy.list_api_keys(s, vendor_id_of(actor)))
    key = next((key for key in found if key.id == key_id), None)
    if key is None:
        raise NotFoundError("api key", key_id)
    return key


def _revocation(request: Request, key: ApiKey) -> Confirmation:
    _ = gettext_of(request)
    return Confirmation(
        heading=_("Revoke this API key?"),
        facts=((_("Name"), key.name), (_("Prefix"), f"lic_{key.prefix}_…")),
        consequence=_(
            "Revoking is final: every program that uses this key (an ERP, a CRM, a shop)"
            " is refused from its next request on. Give it a new key first."
        ),
        understand=_("I understand: a revoked key cannot be used again."),
        action=f"/console/api-keys/{key.id}/revoke",
        button=_("Revoke the key"),
        back="/console/api-keys",
    )


@router.get("/api-keys/{key_id}/revoke", response_class=HTMLResponse)
def confirm_revocation(key_id: str, request: Request) -> Response:
    actor = require_staff(request, "keys:write")
    return confirmation_page(request, actor, _revocation(request, _api_key(request, actor, key_id)))


@router.post("/api-keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_api_key(key_id: str, request: Request, understood: str = Form("")) -> Response:
    actor = require_staff(request, "keys:write")
    try:
        check_understood(understood)
    except ValidationError as error:
        confirmation = _revocation(request, _api_key(request, actor, key_id))
        problems = problems_of(request, error)
        return confirmation_page(request, actor, confirmation, problems=problems, status_code=422)
    units.write(request, lambda s: tenancy.revoke_api_key(s, actor, vendor_id_of(actor), key_id))
    units.forget_credentials(request)
    return RedirectResponse("/console/api-keys?done=revoked", status_code=303)


@router.get("/signing-keys", response_class=HTMLResponse)
def signing_keys(request: Request) -> Response:
    actor = require_staff(request, "keys:read")
    return _signing_keys_page(request, actor, problems=Problems())


def _signing_keys_page(
    request: Request, actor: Actor, *, problems: Problems, status_code: int = 200
) -> Response:
    items = units.read(request, lambda s: keys.list_signing_keys(s, vendor_id_of(actor)))
    return render(
        request,
        actor,
        "console/signing_keys.html",
        status_code=status_code,
        items=items,
        problems=problems,
        done=request.query_params.get("done"),
    )


@router.post("/signing-keys/rotate", response_class=HTMLResponse)
def rotate(request: Request) -> Response:
    actor = require_staff(request, "keys:write")
    master = units.backend_of(request).master
    units.write(request, lambda s: keys.create_signing_key(s, actor, vendor_id_of(actor), master))
    return RedirectResponse("/console/signing-keys?done=rotated", status_code=303)


def _retirement(request: Request, actor: Actor, kid: str) -> Confirmation:
    found = units.read(request, lambda s: keys.list_signing_keys(s, vendor_id_of(actor)))
    if not any(key.kid == kid for key in found):
        raise NotFoundError("signing key", kid)
    _ = gettext_of(request)
    return Confirmation(
        heading=_("Retire this signing key?"),
        facts=((_("Key id"), kid),),
        consequence=_(
            "Retiring is final: nothing signed with this key verifies any more, so a"
            " computer whose licenses still carry its signature stops trusting them until"
            " it syncs. Retire a key only when no device still needs it."
        ),
        understand=_("I understand: a retired key cannot be trusted again."),
        action=f"/console/signing-keys/{kid}/retire",
        button=_("Retire the key"),
        back="/console/signing-keys",
    )


@router.get("/signing-keys/{kid}/retire", response_class=HTMLResponse)
def confirm_retirement(kid: str, request: Request) -> Response:
    actor = require_staff(request, "keys:write")
    return confirmation_page(request, actor, _retirement(request, actor, kid))


@router.post("/signing-keys/{kid}/retire", response_class=HTMLResponse)
def retire(kid: str, request: Request, understood: str = Form("")) -> Response:
    actor = require_staff(request, "keys:write")
    try:
        check_understood(understood)
        units.write(request, lambda s: keys.retire_signing_key(s, actor, vendor_id_of(actor), kid))
    except ValidationError as error:
        problems = problems_of(request, error)
        confirmation = _retirement(request, actor, kid)
        return confirmation_page(request, actor, confirmation, problems=problems, status_code=422)
    except LicentiaError as error:
        problems = problems_of(request, error)
        return _signing_keys_page(request, actor, problems=problems, status_code=status_of(error))
    return RedirectResponse("/console/signing-keys?done=retired", status_code=303)
