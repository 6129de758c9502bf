"""Console pages for license templates: list, create and edit with a field for every
option of the template model. The same use cases as ``/api/v1/templates``."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError
from licentia.server.catalog import services as catalog
from licentia.server.catalog.models import Template
from licentia.server.db.pagination import Page, paginate
from licentia.server.web import units
from licentia.server.web.console.staff import problems_of, query_string, render, staff_of, to_login
from licentia.server.web.console.template_form import (
    CHOICES,
    form_from_options,
    options_from_form,
    other_problems,
)
from licentia.server.web.errors import Problems
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
PAGE_SIZE = 50
_FEATURE = re.compile(r"^features\[\d+\]$")


def _field(field: str) -> str:
    return "features" if _FEATURE.match(field) else field


@router.get("/templates")
def list_templates(request: Request, cursor: str = "", product_id: str = "") -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:read")

    def work(session: units.DbSession) -> Page[Template]:
        query = catalog.templates_query(actor, product_id=product_id or None)
        return paginate(session, query, Template.id, cursor=cursor or None, limit=PAGE_SIZE)

    page = units.read(request, work)
    filters = {"product_id": product_id}
    return render(
        request,
        actor,
        "console/templates.html",
        page=page,
        filters=filters,
        next_link=query_string(filters, cursor=page.next_cursor) if page.next_cursor else None,
    )


@router.get("/templates/new")
def new_template(request: Request, product_id: str = "") -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:write")
    values = {"product_id": product_id, **form_from_options(None)}
    return _form(request, actor, None, values, Problems())


@router.post("/templates/new")
async def create_template(request: Request) -> Response:
    form = await _form_values(request)
    return await run_in_threadpool(_create_template, request, form)


def _create_template(request: Request, form: dict[str, Any]) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:write")
    backend = units.backend_of(request)
    try:
        options = options_from_form(form)
        template = units.write(
            request,
            lambda s: catalog.create_template(
                s,
                actor,
                backend.master,
                sku=form.get("sku", "").strip(),
                name=form.get("name", "").strip(),
                product_id=form.get("product_id", ""),
                features=form["features"],
                options=options,
            ),
        )
    except LicentiaError as error:
        problems = _all_problems(request, error, form)
        return _form(request, actor, None, form, problems, status_code=422)
    return RedirectResponse(f"/console/templates/{template.id}?created=1", status_code=303)


@router.get("/templates/{template_id}")
def edit_template(request: Request, template_id: str) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:read")
    template = units.read(request, lambda s: _template(s, actor, template_id))
    values = {
        "sku": template["sku"],
        "name": template["name"],
        "product_id": template["product_id"],
        "features": template["features"],
        **form_from_options(template["options"]),
    }
    return _form(request, actor, template, values, Problems())


@router.post("/templates/{template_id}")
async def update_template(request: Request, template_id: str) -> Response:
    form = await _form_values(request)
    return await run_in_threadpool(_update_template, request, template_id, form)


def _update_template(request: Request, template_id: str, form: dict[str, Any]) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    actor.require("catalog:write")
    backend = units.backend_of(request)
    try:
        options = options_from_form(form)
        units.write(
            request,
            lambda s: catalog.update_template(
                s,
                actor,
                backend.master,
                template_id,
                name=form.get("name", "").strip(),
                features=form["features"],
                options=options,
            ),
        )
    except LicentiaError as error:
        template = units.read(request, lambda s: _template(s, actor, template_id))
        problems = _all_problems(request, error, form)
        values = {**form, "sku": template["sku"], "product_id": template["product_id"]}
        return _form(request, actor, template, values, problems, status_code=422)
    return RedirectResponse(f"/console/templates/{template_id}?saved=1", status_code=303)


def _all_problems(request: Request, error: LicentiaError, form: dict[str, Any]) -> Problems:
    """The service's refusal and every other problem the form shows on its own (one
    per field, the service's first)."""
    problems = problems_of(request, error, _field)
    for other in other_problems(form):
        for problem in problems_of(request, other, _field).by_field.values():
            problems.add(problem)
    return problems


async def _form_values(request: Request) -> dict[str, Any]:
    """The posted fields as text, and the ticked features as a list."""
    form = await request.form()
    values: dict[str, Any] = {
        name: value for name, value in form.items() if isinstance(value, str) and name != "features"
    }
    values["features"] = [value for value in form.getlist("features") if isinstance(value, str)]
    return values


def _template(session: units.DbSession, actor: Actor, template_id: str) -> dict[str, Any]:
    template = catalog.get_template(session, actor, template_id)
    return {
        "id": template.id,
        "sku": template.sku,
        "name": template.name,
        "product_id": template.product_id,
        "product_code": template.product.code,
        "features": list(template.features),
        "options": template.options,
        "has_secret": template.secret_encrypted is not None,
        "updated_at": template.updated_at,
    }


def _form(
    request: Request,
    actor: Actor,
    template: dict[str, Any] | None,
    values: dict[str, Any],
    problems: Problems,
    *,
    status_code: int = 200,
) -> Response:
    products = units.read(
        request,
        lambda s: [
            {"id": p.id, "code": p.code, "name": p.name, "features": [f.code for f in p.features]}
            for p in catalog.all_products(s, actor)
        ],
    )
    return render(
        request,
        actor,
        "console/template_form.html",
        status_code=status_code,
        edited=template,
        products=products,
        product_choices=[(p["id"], f"{p['code']}: {p['name']}") for p in products],
        values=values,
        choices=CHOICES,
        problems=problems,
    )
