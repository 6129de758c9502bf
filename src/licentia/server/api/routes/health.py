"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from licentia.server.api.context import services_of
from licentia.server.api.problems import problem
from licentia.server.api.threads import ThreadedRoute
from licentia.server.db.schema import schema_status

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
    try:
        with services.db.read_engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        status = schema_status(services.db.read_engine, services.settings.database_url)
    except SQLAlchemyError as error:
        return problem(
            503, "DATABASE_UNREACHABLE", f"the database does not answer: {type(error).__name__}"
        )
    message = status.problem()
    if message is not None:
        return problem(503, "DATABASE_NOT_MIGRATED", message)
    return JSONResponse({"status": "ready", "schema": status.current})
