"""What every page of the customer admin's desk does first: the customer admin of
*this* vendor's portal, and the one of their customer's cloud containers a page names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from licentia.domain.errors import LicentiaError, PermissionDeniedError
from licentia.server.cloud import admin
from licentia.server.cloud.admin import CustomerAdmin
from licentia.server.customer_users.services import CustomerIdentity
from licentia.server.web import units
from licentia.server.web.errors import Problems, problem_of, status_of
from licentia.server.web.portal.pages import Storefront, storefront
from licentia.server.web.rendering import pages_of

PAGE_SIZE = 50


@dataclass(frozen=True)
class Desk:
    """A logged-in customer admin in their vendor's portal."""

    front: Storefront
    who: CustomerIdentity

    @property
    def slug(self) -> str:
        return self.front.vendor.slug

    def container_admin(self, session: units.DbSession, container_id: str) -> CustomerAdmin:
        """Raises NotFoundError for a container that is not their customer's."""
        who = self.who
        return admin.portal_admin(
            session, who.vendor_id, who.customer_id, who.user_id, container_id
        )


def desk_of(request: Request, slug: str) -> Desk | Response:
    """The desk, or the way to the login page for a visitor who is no customer user of
    this vendor. Raises PermissionDeniedError for a colleague who is no customer admin."""
    front = storefront(request, slug)
    if front.customer is None:
        return RedirectResponse(f"/portal/{slug}/login", status_code=303)
    if not front.customer.is_admin:
        raise PermissionDeniedError("only a customer admin manages the company's containers")
    return Desk(front, front.customer)


def render(
    request: Request, desk: Desk, template: str, *, status_code: int = 200, **values: Any
) -> Response:
    values.setdefault("problems", Problems())
    return pages_of(request).render(
        request,
        template,
        status_code=status_code,
        brand=desk.front.brand,
        front=desk.front,
        customer=desk.who,
        **values,
    )


def refused(error: LicentiaError, request: Request) -> tuple[Problems, int]:
    """An action's refusal, to show above the page it came from, and the page's status."""
    problems = Problems()
    problems.add(problem_of(error, pages_of(request).gettext_for(request).gettext))
    return problems, status_of(error)
