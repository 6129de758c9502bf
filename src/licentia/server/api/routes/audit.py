"""Reading the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import AwareDatetime, BaseModel, Field

from licentia.server.api.context import Context, require
from licentia.server.api.schemas import (
    CODE,
    ID,
    NAME,
    Out,
    PageOut,
    PageParams,
    page_of,
    page_params,
)
from licentia.server.api.threads import ThreadedRoute
from licentia.server.audit.models import AuditEvent
from licentia.server.audit.services import AuditFilter, query_events
from licentia.server.db.pagination import paginate

router = APIRouter(tags=["audit"], route_class=ThreadedRoute)


class AuditEventOut(Out):
    id: str
    seq: int
    at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    object_type: str
    object_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    source_ip: str | None
    hash: str


class AuditQuery(BaseModel):
    action: str | None = Field(default=None, max_length=CODE)
    object_type: str | None = Field(default=None, max_length=CODE)
    object_id: str | None = Field(default=None, max_length=NAME)
    actor_id: str | None = Field(default=None, max_length=ID)
    # Aware only: the log is kept in UTC and a naive time would be a guess.
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None


@router.get("/audit-events", response_model=PageOut[AuditEventOut])
def list_audit_events(
    filters: AuditQuery = Depends(),
    page: PageParams = Depends(page_params),
    ctx: Context = Depends(require("audit:read")),
) -> PageOut[AuditEventOut]:
    """The vendor's audit events in the order they were written (``seq``), narrowed by
    the filters."""
    query = query_events(ctx.vendor_id, AuditFilter(**filters.model_dump()))
    # By seq, not id: ids written in the same millisecond are not ordered among themselves.
    return ctx.read(
        lambda s: page_of(
            paginate(s, query, AuditEvent.seq, cursor=page.cursor, limit=page.limit),
            AuditEventOut.model_validate,
        )
    )
