"""Console pages for products and their features: list, create, rename, add a
feature. The same use cases as ``/api/v1/products``."""

from __future__ import annotations

import re

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from licentia.domain.errors import LicentiaError
from licentia.server.catalog import services as catalog
from licentia.server.catalog.models import Product
from licentia.server.db.pagination import paginate
from licentia.server.web import units
from licentia.server.web.console.staff import (
    problems_of,
    query_string,
    render,
    staff_of,
    to_login,
)
from licentia.server.web.errors import Problems
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
PAGE_SIZE = 50
_INDEXED = re.compile(r"^(add_)?features\[\d+\]\.code$")


def parse_features(text: str) -> list[dict[str, str]]:
    """One feature a line: its code, then optionally its name after a space."""
    features = []
    for line in text.splitlines():
        code, _, name = line.strip().partition(" ")
        if code:
            features.append({"code": code, "name": name.strip() or code})
    return features


def _feature_field(field: str) -> str:
    return "features" if _INDEXED.match(field) else field


@router.get("/products")
def list_products(request: Request, cursor: str = "") -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:read")
    page = units.read(
        request,
        lambda s: paginate(
            s, catalog.products_query(actor), Product.id, cursor=cursor or None, limit=PAGE_SIZE
        ),
    )
    return render(
        request,
        actor,
        "console/products.html",
        page=page,
        next_link=query_string({}, cursor=page.next_cursor) if page.next_cursor else None,
        values={},
        problems=Problems(),
    )


@router.post("/products")
def create_product(
    request: Request, code: str = Form(""), name: str = Form(""), features: str = Form("")
) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:write")
    try:
        product = units.write(
            request,
            lambda s: catalog.create_product(
                s, actor, code=code.strip(), name=name.strip(), features=parse_features(features)
            ),
        )
    except LicentiaError as error:
        page = units.read(
            request,
            lambda s: paginate(
                s, catalog.products_query(actor), Product.id, cursor=None, limit=PAGE_SIZE
            ),
        )
        return render(
            request,
            actor,
            "console/products.html",
            status_code=422,
            page=page,
            next_link=None,
            values={"code": code, "name": name, "features": features},
            problems=problems_of(request, error, _feature_field),
        )
    return RedirectResponse(f"/console/products/{product.id}?created=1", status_code=303)


@router.get("/products/{product_id}")
def show_product(request: Request, product_id: str) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:read")
    return _product_page(request, product_id, {}, Problems())


def _product_page(
    request: Request,
    product_id: str,
    values: dict[str, str],
    problems: Problems,
    *,
    status_code: int = 200,
) -> Response:
    actor = staff_of(request)
    assert actor is not None

    def work(session: units.DbSession) -> tuple[Product, list[tuple[str, str, str]]]:
        product = catalog.get_product(session, actor, product_id)
        templates = [
            (t.id, t.sku, t.name)
            for t in session.scalars(catalog.templates_query(actor, product_id=product.id))
        ]
        return product, templates

    product, templates = units.read(request, work)
    return render(
        request,
        actor,
        "console/product.html",
        status_code=status_code,
        product=product,
        templates=templates,
        values=values,
        problems=problems,
    )


@router.post("/products/{product_id}")
def rename_product(request: Request, product_id: str, name: str = Form("")) -> Response:
    return _update(request, product_id, {"name": name}, name=name.strip(), features=[])


@router.post("/products/{product_id}/features")
def add_feature(
    request: Request, product_id: str, code: str = Form(""), feature_name: str = Form("")
) -> Response:
    feature = {"code": code.strip(), "name": feature_name.strip() or code.strip()}
    values = {"code": code, "feature_name": feature_name}
    return _update(request, product_id, values, name=None, features=[feature])


def _update(
    request: Request,
    product_id: str,
    values: dict[str, str],
    *,
    name: str | None,
    features: list[dict[str, str]],
) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:write")
    try:
        units.write(
            request,
            lambda s: catalog.update_product(
                s, actor, product_id, name=name, add_features=features
            ),
        )
    except LicentiaError as error:
        problems = problems_of(request, error, lambda f: "code" if _INDEXED.match(f) else f)
        return _product_page(request, product_id, values, problems, status_code=422)
    return RedirectResponse(f"/console/products/{product_id}?saved=1", status_code=303)
