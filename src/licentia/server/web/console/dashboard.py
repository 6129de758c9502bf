"""The console's dashboard: the vendor's figures of the last 30 days as charts drawn
on the server (``web/charts.py``), read through ``reports.dashboard``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from licentia.server.db.base import utcnow
from licentia.server.reports.dashboard import dashboard
from licentia.server.web import units
from licentia.server.web.charts import day_chart
from licentia.server.web.console.staff import render, staff_of, to_login
from licentia.server.web.forms import FORM_CHECKS
from licentia.server.web.rendering import pages_of

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)


@router.get("/")
def show_dashboard(request: Request) -> Response:
    actor = staff_of(request)
    if actor is None:
        return to_login(request)
    language = pages_of(request).language(request)
    figures = None
    if "licenses:read" in actor.scopes:
        figures = units.read(request, lambda s: dashboard(s, actor, utcnow()))
    return render(
        request,
        actor,
        "console/dashboard.html",
        figures=figures,
        activations=day_chart(figures.activations, language) if figures else None,
        peak_seats=day_chart(figures.peak_seats, language) if figures else None,
        denials=day_chart(figures.denials, language) if figures else None,
    )
