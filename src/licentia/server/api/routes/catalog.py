"""Products and license templates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from licentia.domain.templates import TemplateOptions
from licentia.server.api.context import Context, require
from licentia.server.api.schemas import (
    CODE,
    ID,
    IDEMPOTENT,
    Code,
    Name,
    Out,
    PageOut,
    PageParams,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.catalog import services as catalog
from licentia.server.catalog.models import Product, Template
from licentia.server.db.pagination import paginate

router = APIRouter(tags=["catalog"], route_class=ThreadedRoute)
MAX_FEATURES = catalog.MAX_FEATURES
OPTIONS = len(TemplateOptions.model_fields)  # unknown options are refused anyway


class FeatureIn(BaseModel):
    code: Code
    name: str | None = Field(default=None, max_length=200)


class ProductCreate(BaseModel):
    code: Code
    name: Name
    features: list[FeatureIn] = Field(default=[], max_length=MAX_FEATURES)


class ProductUpdate(BaseModel):
    name: Name | None = Field(default=None, description="null or left out: unchanged")
    add_features: list[FeatureIn] = Field(default=[], max_length=MAX_FEATURES)


class FeatureOut(Out):
    code: str
    name: str


class ProductOut(Out):
    id: str
    code: str
    name: str
    features: list[FeatureOut]
    created_at: datetime


class TemplateCreate(BaseModel):
    sku: Code
    name: Name
    product_id: str = Field(max_length=ID)
    features: list[Annotated[str, Field(max_length=CODE)]] = Field(
        default=[], max_length=MAX_FEATURES
    )
    options: dict[str, Any] = Field(
        default_factory=dict, max_length=OPTIONS, description="see docs/api.md#template-options"
    )


class TemplateUpdate(BaseModel):
    name: Name | None = Field(default=None, description="null or left out: unchanged")
    features: list[Annotated[str, Field(max_length=CODE)]] | None = Field(
        default=None, max_length=MAX_FEATURES
    )
    options: dict[str, Any] | None = Field(default=None, max_length=OPTIONS)


class TemplateOut(Out):
    id: str
    sku: str
    name: str
    product_id: str
    product_code: str
    features: list[str]
    options: dict[str, Any]
    has_secret: bool
    created_at: datetime
    updated_at: datetime


def product_out(product: Product) -> ProductOut:
    return ProductOut.model_validate(product)


def template_out(template: Template) -> TemplateOut:
    return TemplateOut(
        id=template.id,
        sku=template.sku,
        name=template.name,
        product_id=template.product_id,
        product_code=template.product.code,
        features=list(template.features),
        options=template.options,
        has_secret=template.secret_encrypted is not None,
        created_at=template.created_at,
        updated_at=template.updated_at,
    )


def _features(items: list[FeatureIn]) -> list[dict[str, str]]:
    return [{"code": f.code, "name": f.name or f.code} for f in items]


@router.post("/products", status_code=201, response_model=ProductOut, openapi_extra=IDEMPOTENT)
def create_product(
    body: ProductCreate, request: Request, ctx: Context = Depends(require("catalog:write"))
) -> JSONResponse:
    return ctx.create(
        request,
        body,
        lambda s: product_out(
            catalog.create_product(
                s, ctx.actor, code=body.code, name=body.name, features=_features(body.features)
            )
        ),
    )


@router.get("/products", response_model=PageOut[ProductOut])
def list_products(
    page: PageParams = Depends(page_params), ctx: Context = Depends(require("catalog:read"))
) -> PageOut[ProductOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                catalog.products_query(ctx.actor),
                Product.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            product_out,
        )
    )


@router.get("/products/{product_id}", response_model=ProductOut)
def get_product(product_id: str, ctx: Context = Depends(require("catalog:read"))) -> ProductOut:
    return ctx.read(lambda s: product_out(catalog.get_product(s, ctx.actor, product_id)))


@router.patch("/products/{product_id}", response_model=ProductOut)
def update_product(
    product_id: str, body: ProductUpdate, ctx: Context = Depends(require("catalog:write"))
) -> ProductOut:
    return ctx.write(
        lambda s: product_out(
            catalog.update_product(
                s, ctx.actor, product_id, name=body.name, add_features=_features(body.add_features)
            )
        )
    )


@router.post("/templates", status_code=201, response_model=TemplateOut, openapi_extra=IDEMPOTENT)
def create_template(
    body: TemplateCreate, request: Request, ctx: Context = Depends(require("catalog:write"))
) -> JSONResponse:
    return ctx.create(
        request,
        body,
        lambda s: template_out(
            catalog.create_template(
                s,
                ctx.actor,
                ctx.master,
                sku=body.sku,
                name=body.name,
                product_id=body.product_id,
                features=body.features,
                options=body.options,
            )
        ),
    )


@router.get("/templates", response_model=PageOut[TemplateOut])
def list_templates(
    page: PageParams = Depends(page_params), ctx: Context = Depends(require("catalog:read"))
) -> PageOut[TemplateOut]:
    return ctx.read(
        lambda s: page_of(
            paginate(
                s,
                catalog.templates_query(ctx.actor),
                Template.id,
                cursor=page.cursor,
                limit=page.limit,
            ),
            template_out,
        )
    )


@router.get("/templates/{template_id}", response_model=TemplateOut)
def get_template(template_id: str, ctx: Context = Depends(require("catalog:read"))) -> TemplateOut:
    return ctx.read(lambda s: template_out(catalog.get_template(s, ctx.actor, template_id)))


@router.patch("/templates/{template_id}", response_model=TemplateOut)
def update_template(
    template_id: str, body: TemplateUpdate, ctx: Context = Depends(require("catalog:write"))
) -> TemplateOut:
    return ctx.write(
        lambda s: template_out(
            catalog.update_template(
                s,
                ctx.actor,
                ctx.master,
                template_id,
                name=body.name,
                features=body.features,
                options=body.options,
            )
        )
    )
