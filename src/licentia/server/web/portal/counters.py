"""The unit counters of a customer's container: each balance, and one counter's
ledger (``cloud.admin``), with the units consumed per day over the last 30 days as a
chart (``reports.container_usage``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from licentia.server.cloud import admin
from licentia.server.cloud.admin import Counter, CounterLedger
from licentia.server.cloud.models import CloudContainer
from licentia.server.db.base import utcnow
from licentia.server.reports.container_usage import unit_consumption
from licentia.server.reports.days import DayCount
from licentia.server.web import units
from licentia.server.web.charts import day_chart
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.portal.desk import PAGE_SIZE, Desk, desk_of, render
from licentia.server.web.rendering import pages_of

router = APIRouter(prefix="/portal", include_in_schema=False, dependencies=FORM_CHECKS)


@router.get("/{slug}/containers/{container_id}/counters", response_class=HTMLResponse)
def list_counters(slug: str, container_id: str, request: Request) -> Response:
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk

    def work(session: units.DbSession) -> tuple[CloudContainer, list[Counter], list[DayCount]]:
        opened = desk.container_admin(session, container_id)
        used = unit_consumption(session, opened.container.id, utcnow())
        return opened.container, admin.counters_of(session, opened), used

    container, found, used = units.read(request, work)
    chart = day_chart(used, pages_of(request).language(request))
    return render(
        request, desk, "portal/counters.html", container=container, counters=found, chart=chart
    )


@router.get("/{slug}/containers/{container_id}/counters/{license_id}", response_class=HTMLResponse)
def show_counter(
    slug: str, container_id: str, license_id: str, request: Request, cursor: str = ""
) -> Response:
    desk = desk_of(request, slug)
    if not isinstance(desk, Desk):
        return desk

    def work(session: units.DbSession) -> tuple[CloudContainer, CounterLedger, list[DayCount]]:
        opened = desk.container_admin(session, container_id)
        found = admin.counter(session, opened, license_id, cursor=cursor or None, limit=PAGE_SIZE)
        used = unit_consumption(session, opened.container.id, utcnow(), license_id=found.license_id)
        return opened.container, found, used

    container, view, used = units.read(request, work)
    chart = day_chart(used, pages_of(request).language(request))
    return render(request, desk, "portal/counter.html", container=container, view=view, chart=chart)
