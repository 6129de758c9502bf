"""Signing keys (rotate, retire), the public JWKS, and API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from licentia.domain.scopes import SCOPES
from licentia.server.api.context import Context, require, services_of
from licentia.server.api.schemas import (
    CODE,
    IDEMPOTENT,
    Out,
    PageOut,
    PageParams,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.pagination import paginate
from licentia.server.keys import services as keys
from licentia.server.keys.models import SigningKey
from licentia.server.tenancy import services as tenancy
from licentia.server.tenancy.models import ApiKey

router = APIRouter(tags=["keys"], route_class=ThreadedRoute)
public_router = APIRouter(tags=["public"], route_class=ThreadedRoute)


class SigningKeyOut(Out):
    kid: str
    status: str
    created_at: datetime
    retired_at: datetime | None


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[
        Annotated[str, Field(max_length=CODE, json_schema_extra={"enum": list(SCOPES)})]
    ] = Field(min_length=1, max_length=len(SCOPES))


class ApiKeyOut(Out):
    id: str
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    secret: str = Field(description="the key itself; shown this once and never again")


def api_key_issued(issued: tenancy.IssuedApiKey) -> ApiKeyIssued:
    return ApiKeyIssued(**ApiKeyOut.model_validate(issued.key).model_dump(), secret=issued.secret)


@router.get("/signing-keys", response_model=PageOut[SigningKeyOut])
def list_signing_keys(
    page: PageParams = Depends(page_params), ctx: Context = Depends(require("keys:read"))
) -> PageOut[SigningKeyOut]:
    """The vendor's signing keys, oldest first (ids are time-ordered)."""
    query = keys.signing_keys_query(ctx.vendor_id)
    return ctx.read(
        lambda s: page_of(
            paginate(s, query, SigningKey.id, cursor=page.cursor, limit=page.limit),
            SigningKeyOut.model_validate,
        )
    )


@router.post(
    "/signing-keys/rotate", status_code=201, response_model=SigningKeyOut, openapi_extra=IDEMPOTENT
)
def rotate_signing_key(
    request: Request, ctx: Context = Depends(require("keys:write"))
) -> JSONResponse:
    """A new current key signs from now on; the old one keeps verifying until retired."""
    return ctx.create(
        request,
        None,
        lambda s: SigningKeyOut.model_validate(
            keys.create_signing_key(s, ctx.actor, ctx.vendor_id, ctx.master)
        ),
    )


@router.post("/signing-keys/{kid}/retire", response_model=SigningKeyOut)
def retire_signing_key(kid: str, ctx: Context = Depends(require("keys:write"))) -> SigningKeyOut:
    return ctx.write(
        lambda s: SigningKeyOut.model_validate(
            keys.retire_signing_key(s, ctx.actor, ctx.vendor_id, kid)
        )
    )


@router.get("/api-keys", response_model=PageOut[ApiKeyOut])
def list_api_keys(
    page: PageParams = Depends(page_params), ctx: Context = Depends(require("keys:read"))
) -> PageOut[ApiKeyOut]:
    """The vendor's API keys, revoked ones too, oldest first; never their secrets."""
    query = tenancy.api_keys_query(ctx.vendor_id)
    return ctx.read(
        lambda s: page_of(
            paginate(s, query, ApiKey.id, cursor=page.cursor, limit=page.limit),
            ApiKeyOut.model_validate,
        )
    )


@router.post("/api-keys", status_code=201, response_model=ApiKeyIssued, openapi_extra=IDEMPOTENT)
def create_api_key(
    body: ApiKeyCreate, request: Request, ctx: Context = Depends(require("keys:write"))
) -> JSONResponse:
    return ctx.create(
        request,
        body,
        lambda s: api_key_issued(
            tenancy.create_api_key(s, ctx.actor, ctx.vendor_id, name=body.name, scopes=body.scopes)
        ),
    )


@router.delete("/api-keys/{key_id}", response_model=ApiKeyOut)
def revoke_api_key(key_id: str, ctx: Context = Depends(require("keys:write"))) -> ApiKeyOut:
    """Revoke a key: at once through this process, within
    ``LICENTIA_CREDENTIAL_CACHE_SECONDS`` on other server processes."""
    revoked = ctx.write(
        lambda s: ApiKeyOut.model_validate(
            tenancy.revoke_api_key(s, ctx.actor, ctx.vendor_id, key_id)
        )
    )
    ctx.services.credentials.clear()
    return revoked


@public_router.get("/vendors/{slug}/jwks.json")
def vendor_jwks(slug: str, request: Request) -> JSONResponse:
    """The vendor's public signing keys (RFC 7517 JWK Set); no authentication."""
    services = services_of(request)
    with services.db.read() as session:
        document = keys.vendor_jwks(session, slug)
    return JSONResponse(document, headers={"Cache-Control": "public, max-age=300"})
