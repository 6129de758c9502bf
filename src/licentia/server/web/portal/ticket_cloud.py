"""A ticket's cloud and seat-pool licenses put into one of the company's cloud
containers by its customer admin, or into a new one (``cloud.admin``: the rules of
``cloud.services.put_ticket``, the ones the API's redeem calls apply). A new container
answers with a page of its own: where the licenses went, the way to the container, and
its credential file (``.licred``) to download, this once (only a fingerprint of the
credential is kept), from the page itself (a ``data:`` link, so a reload re-sends
nothing and the file needs no second request)."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from licentia.domain.errors import LicentiaError
from licentia.server.cloud import admin
from licentia.server.cloud.licred import MEDIA_TYPE, licred_file, licred_filename
from licentia.server.web import units
from licentia.server.web.errors import Problems, problem_of, status_of
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.portal.desk import Desk, desk_of
from licentia.server.web.portal.pages import ticket_page
from licentia.server.web.rendering import pages_of

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=FORM_CHECKS)
NEW = "new"


@router.post("/{slug}/tickets/{ticket_id}/cloud")
def put_into_container(
    slug: str,
    ticket_id: str,
    request: Request,
    container_id: str = Form(""),
    name: str = Form(""),
) -> Response:
    """Into an existing container: back to the ticket, which shows where its licenses
    are now. Into a new one: the page of the new container and its ``.licred`` file."""
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    try:
        if container_id == NEW:
            return _into_new(request, desk, ticket_id, name)
        units.write(
            request,
            lambda s: admin.put_ticket(s, desk.container_admin(s, container_id), ticket_id),
        )
    except LicentiaError as error:
        problems = Problems()
        gettext = pages_of(request).gettext_for(request).gettext
        field = "name" if error.details.get("field") == "name" else "container_id"
        problems.add(problem_of(error, gettext, field=field))
        typed = {"container_id": container_id, "name": name}
        return ticket_page(
            request,
            desk.front,
            desk.who,
            ticket_id,
            problems=problems,
            status_code=status_of(error),
            typed=typed,
        )
    return RedirectResponse(f"/portal/{slug}/tickets/{ticket_id}", status_code=303)


def _into_new(request: Request, desk: Desk, ticket_id: str, name: str) -> Response:
    who = desk.who
    issued = units.write(
        request,
        lambda s: admin.put_ticket_into_new_container(
            s, who.vendor_id, who.customer_id, who.user_id, ticket_id, name
        ),
    )
    server_url = units.backend_of(request).settings.public_url
    content = licred_file(issued, server_url, desk.slug)
    encoded = base64.b64encode(content.encode()).decode("ascii")
    return pages_of(request).render(
        request,
        "portal/container_made.html",
        status_code=201,
        brand=desk.front.brand,
        front=desk.front,
        customer=desk.front.customer,
        container=issued.container,
        ticket_id=ticket_id,
        licred_href=f"data:{MEDIA_TYPE};base64,{encoded}",
        licred_name=licred_filename(issued.container.name),
    )
