"""Who holds which seat of a customer's container now, borrowed seats among them, the
refused checkouts, and a seat freed by the customer admin (``cloud.admin``, as the
API's customer admin routes call it); the seats in use and the refusals of the last 30
days as charts (``reports.container_usage``)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.domain.errors import LicentiaError
from licentia.server.cloud import admin
from licentia.server.cloud.admin import HeldSeat, HolderLabel
from licentia.server.cloud.models import CloudContainer
from licentia.server.db.base import utcnow
from licentia.server.db.pagination import Page
from licentia.server.reports.container_usage import SeatUsage, seat_usage
from licentia.server.seats.models import SeatEvent
from licentia.server.web import units
from licentia.server.web.charts import day_chart
from licentia.server.web.errors import Problems
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.portal.desk import PAGE_SIZE, Desk, desk_of, refused, render
from licentia.server.web.rendering import pages_of

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=FORM_CHECKS)


@dataclass(frozen=True)
class SeatsView:
    container: CloudContainer
    held: Page[HeldSeat]
    denials: Page[SeatEvent]
    askers: list[HolderLabel]  # who asked, for each of the denials
    usage: SeatUsage


def _seats_page(
    request: Request,
    desk: Desk,
    container_id: str,
    cursors: tuple[str, str] = ("", ""),
    problems: Problems | None = None,
    status_code: int = 200,
) -> Response:
    held_cursor, denials_cursor = cursors

    def work(session: units.DbSession) -> SeatsView:
        opened = desk.container_admin(session, container_id)
        held = admin.held_seats(
            session, opened, utcnow(), cursor=held_cursor or None, limit=PAGE_SIZE
        )
        refusals = admin.denials(session, opened, cursor=denials_cursor or None, limit=PAGE_SIZE)
        names = admin.device_names(session, opened)
        askers = [admin.holder_of(event.holder_key, names) for event in refusals.items]
        usage = seat_usage(session, opened.container.id, utcnow())
        return SeatsView(opened.container, held, refusals, askers, usage)

    view = units.read(request, work)
    language = pages_of(request).language(request)
    return render(
        request,
        desk,
        "portal/seats.html",
        status_code=status_code,
        view=view,
        in_use_chart=day_chart(view.usage.in_use, language),
        denials_chart=day_chart(view.usage.denials, language),
        cursors=cursors,
        problems=problems or Problems(),
    )


@router.get("/{slug}/containers/{container_id}/seats", response_class=HTMLResponse)
def show_seats(
    slug: str, container_id: str, request: Request, cursor: str = "", denials: str = ""
) -> Response:
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    return _seats_page(request, desk, container_id, (cursor, denials))


@router.post("/{slug}/containers/{container_id}/seats/{lease_id}/release")
def release_seat(slug: str, container_id: str, lease_id: str, request: Request) -> Response:
    """Free somebody's seat; their application learns it at its next heartbeat."""
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk
    try:
        units.write(
            request,
            lambda s: admin.release_seat(
                s, desk.container_admin(s, container_id), lease_id, utcnow()
            ),
        )
    except LicentiaError as error:
        problems, status = refused(error, request)
        return _seats_page(request, desk, container_id, problems=problems, status_code=status)
    return RedirectResponse(f"/portal/{slug}/containers/{container_id}/seats", status_code=303)
