"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from licentia.server.api.context import services_of
from licentia.server.api.problems import problem
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.schema import readiness

router = APIRouter(tags=["health"], route_class=ThreadedRoute)


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process answers. Asynchronous on purpose: a liveness probe must not wait for
    a thread of the pool that busy requests hold."""
    return JSONResponse({"status": "ok"})


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The database is reachable and migrated to exactly this code's schema."""
    services = services_of(request)
    ready = readiness(services.db.read_engine, services.settings.database_url)
    if ready.code is not None:
        return problem(503, ready.code, ready.message)
    return JSONResponse({"status": "ready", "schema": ready.schema})
