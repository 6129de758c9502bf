"""The unit counters of a customer's container: each balance, and one counter's
ledger (``cloud.admin``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from licentia.server.cloud import admin
from licentia.server.cloud.admin import Counter, CounterLedger
from licentia.server.cloud.models import CloudContainer
from licentia.server.web import units
from licentia.server.web.csrf import check_csrf
from licentia.server.web.portal.desk import PAGE_SIZE, Desk, desk_of, render

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=[Depends(check_csrf)])


@router.get("/{slug}/containers/{container_id}/counters", response_class=HTMLResponse)
def list_counters(slug: str, container_id: str, request: Request) -> Response:
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk

    def work(session: units.DbSession) -> tuple[CloudContainer, list[Counter]]:
        opened = desk.container_admin(session, container_id)
        return opened.container, admin.counters_of(session, opened)

    container, found = units.read(request, work)
    return render(request, desk, "portal/counters.html", container=container, counters=found)


@router.get("/{slug}/containers/{container_id}/counters/{license_id}", response_class=HTMLResponse)
def show_counter(
    slug: str, container_id: str, license_id: str, request: Request, cursor: str = ""
) -> Response:
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk

    def work(session: units.DbSession) -> tuple[CloudContainer, CounterLedger]:
        opened = desk.container_admin(session, container_id)
        found = admin.counter(session, opened, license_id, cursor=cursor or None, limit=PAGE_SIZE)
        return opened.container, found

    container, view = units.read(request, work)
    return render(request, desk, "portal/counter.html", container=container, view=view)
