"""What every console page does first: find the staff member (or send them to the
login), render in the vendor's brand, and turn a service's error into a message next
to the form field it names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from licentia.domain.actors import Actor
from licentia.domain.errors import LicentiaError
from licentia.server.tenancy.branding import Branding, branding_for
from licentia.server.web import units
from licentia.server.web.errors import Problems, problem_of
from licentia.server.web.rendering import pages_of
from licentia.server.web.sessions import visitor_of


def staff_of(request: Request) -> Actor | None:
    """The logged-in staff member, or None."""
    return visitor_of(request).staff


def to_login(request: Request) -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


def brand_of(request: Request, actor: Actor) -> Branding:
    """The actor's vendor's branding: read with the visitor's session when the actor is
    the visitor (every console page), else now."""
    vendor_id = actor.vendor_id
    assert vendor_id is not None
    visitor = visitor_of(request)
    if visitor.staff is actor and visitor.staff_brand is not None:
        return visitor.staff_brand
    return units.read(request, lambda s: branding_for(s, vendor_id))


def render(
    request: Request, actor: Actor, template: str, *, status_code: int = 200, **values: Any
) -> Response:
    """A console page in the vendor's brand; ``can(scope)`` tells the template which
    actions to offer (the handlers refuse them anyway)."""
    return pages_of(request).render(
        request,
        template,
        brand=brand_of(request, actor),
        status_code=status_code,
        actor=actor,
        can=lambda scope: scope in actor.scopes,
        **values,
    )


def problems_of(
    request: Request,
    error: LicentiaError,
    fields: Callable[[str], str] | None = None,
    *,
    field: str | None = None,
) -> Problems:
    """The error as the form shows it; ``fields`` maps the service's field name (e.g.
    ``add_features[0].code``) to the form's; ``field`` puts it next to that field."""
    problem = problem_of(error, pages_of(request).gettext_for(request).gettext, field=field)
    if problem.field and fields is not None:
        problem = replace(problem, field=fields(problem.field))
    problems = Problems()
    problems.add(problem)
    return problems


def gettext_of(request: Request) -> Callable[[str], str]:
    return pages_of(request).gettext_for(request).gettext


def query_string(values: Mapping[str, str | None], **changes: str | None) -> str:
    """``?a=1&b=2`` of the non-empty ``values`` with ``changes`` applied: the filters
    of a list stay in the address when it pages on."""
    merged = {**values, **changes}
    kept = {name: value for name, value in merged.items() if value}
    return "?" + urlencode(kept) if kept else ""


__all__ = ["Response", "brand_of", "problems_of", "query_string", "render", "staff_of", "to_login"]
