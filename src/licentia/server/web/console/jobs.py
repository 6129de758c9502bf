"""Console: the vendor's jobs that failed for good (kind, last error, attempts, when),
each with a Retry button that queues it again (``background.failures``). For admins:
a retry sends a mail again or resumes a large order's issuing."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from licentia.server.background.failures import failed_jobs, retry_job
from licentia.server.db.pagination import paginate
from licentia.server.jobs.models import JobRow
from licentia.server.web import units
from licentia.server.web.console.frame import limit_of, next_page, render, require_staff
from licentia.server.web.forms import FORM_CHECKS

router = APIRouter(prefix="/console", include_in_schema=False, dependencies=FORM_CHECKS)
SCOPE = "vendor:write"  # admins: a retry acts (sends a mail again, issues licenses)


@router.get("/jobs", response_class=HTMLResponse)
def failed_job_list(request: Request, cursor: str | None = None) -> Response:
    actor = require_staff(request, SCOPE)
    query, limit = failed_jobs(actor), limit_of(request)
    page = units.read(request, lambda s: paginate(s, query, JobRow.id, cursor=cursor, limit=limit))
    return render(
        request,
        actor,
        "console/jobs.html",
        items=page.items,
        next_page=next_page(request, page.next_cursor),
        retried=request.query_params.get("retried"),
    )


@router.post("/jobs/{job_id}/retry", response_class=HTMLResponse)
def retry(job_id: str, request: Request) -> Response:
    actor = require_staff(request, SCOPE)
    kind = units.write(request, lambda s: retry_job(s, actor, job_id))
    return RedirectResponse(f"/console/jobs?retried={kind}", status_code=303)
