"""Named licenses and seats: who of its customer's users a license (a seat pool: each
of its seats) is meant for (``customer_users.assignments``; the customer admin does
the same in the License Portal)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel

from licentia.server.api.context import Context, require
from licentia.server.api.threads import ThreadedRoute
from licentia.server.customer_users import assignments

router = APIRouter(tags=["licenses"], route_class=ThreadedRoute)


class AssigneeOut(BaseModel):
    customer_user_id: str
    email: str
    assigned_at: datetime


def _out(assignee: assignments.Assignee) -> AssigneeOut:
    return AssigneeOut(
        customer_user_id=assignee.customer_user_id,
        email=assignee.email,
        assigned_at=assignee.assigned_at,
    )


@router.get("/licenses/{license_id}/assignments", response_model=list[AssigneeOut])
def list_assignments(
    license_id: str, ctx: Context = Depends(require("licenses:read"))
) -> list[AssigneeOut]:
    """The customer users the license is named to, in the order they were named."""
    return ctx.read(
        lambda s: [_out(a) for a in assignments.license_assignees(s, ctx.vendor_id, license_id)]
    )


@router.put("/licenses/{license_id}/assignments/{customer_user_id}", response_model=AssigneeOut)
def assign(
    license_id: str, customer_user_id: str, ctx: Context = Depends(require("licenses:write"))
) -> AssigneeOut:
    """Name the license (a seat pool: one of its seats) to a user of its customer;
    idempotent. 409 ``ASSIGNMENT_LIMIT_REACHED`` when every place is taken, 404 for a
    person who is not an active user of the license's customer."""
    return ctx.write(
        lambda s: _out(assignments.assign_license(s, ctx.actor, license_id, customer_user_id))
    )


@router.delete("/licenses/{license_id}/assignments/{customer_user_id}", status_code=204)
def unassign(
    license_id: str, customer_user_id: str, ctx: Context = Depends(require("licenses:write"))
) -> Response:
    """Free the person's place; 404 ``ASSIGNMENT_NOT_FOUND`` if they hold none."""
    ctx.write(lambda s: assignments.unassign_license(s, ctx.actor, license_id, customer_user_id))
    return Response(status_code=204)
