"""The customer admin's view of a cloud container, authenticated by its credential.

Until the License Portal exists, whoever holds the container credential (the
``.licred`` secret, ``Authorization: Bearer lcc_…``) can see who holds which seat,
force-release a seat, read the denials and deregister devices. The vendor has the same
abilities through its own API (``/licenses/{id}/seats``, ``/cloud-containers/…``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import AuthenticationError, NotFoundError
from licentia.server.api.context import Services, services_of
from licentia.server.api.threads import ThreadedRoute
from licentia.server.cloud import services as cloud
from licentia.server.cloud.models import CloudContainer
from licentia.server.db.base import utcnow
from licentia.server.db.engine import run_write
from licentia.server.seats import services as seats
from licentia.server.tenancy.services import get_vendor_by_slug

router = APIRouter(
    prefix="/vendors/{slug}/cloud/admin", tags=["cloud customer admin"], route_class=ThreadedRoute
)
_bearer = HTTPBearer(auto_error=False, description="The container credential (lcc_…)")
T = TypeVar("T")


class AdminCall:
    def __init__(self, services: Services, slug: str, credential: str) -> None:
        self.services, self.slug, self.credential = services, slug, credential

    def run(self, work: Callable[[Session, CloudContainer, Actor], T]) -> T:
        def unit(session: Session) -> T:
            vendor = get_vendor_by_slug(session, self.slug)
            container = cloud.container_by_credential(
                session, vendor.id, self.credential, lock=False
            )
            actor = Actor(ActorKind.CUSTOMER_ADMIN, container.id, vendor.id)
            return work(session, container, actor)

        return run_write(self.services.db, unit)


def admin_call(
    slug: str, request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> AdminCall:
    if credentials is None:
        raise AuthenticationError("send 'Authorization: Bearer <container credential>'")
    return AdminCall(services_of(request), slug, credentials.credentials)


class HeldSeat(BaseModel):
    license_id: str
    product: str
    lease_id: str | None
    user: str | None
    device: str | None
    process: str | None
    acquired_at: datetime | None
    expires_at: datetime | None
    borrowed: bool


class Denial(BaseModel):
    license_id: str
    holder_key: str | None
    in_use: int
    at: datetime


class RegisteredDevice(BaseModel):
    id: str
    name: str
    created_at: datetime
    last_seen_at: datetime | None
    deregistered_at: datetime | None


@router.get("/seats", response_model=list[HeldSeat])
def held_seats(call: AdminCall = Depends(admin_call)) -> list[HeldSeat]:
    """Who holds which seat of the container's pools right now."""

    def work(session: Session, container: CloudContainer, _actor: Actor) -> list[HeldSeat]:
        now, held = utcnow(), []
        for pool in cloud.container_licenses(session, container.id):
            held += [
                HeldSeat(
                    license_id=pool.id,
                    product=pool.product_code,
                    lease_id=s.lease_id,
                    user=s.user_name,
                    device=s.device_name,
                    process=s.process_id,
                    acquired_at=s.acquired_at,
                    expires_at=s.expires_at,
                    borrowed=s.borrowed,
                )
                for s in seats.occupancy(session, pool.id, now)
            ]
        return held

    return call.run(work)


@router.delete("/seats/{lease_id}", status_code=204)
def force_release(lease_id: str, call: AdminCall = Depends(admin_call)) -> Response:
    """Free somebody's seat (a colleague left with the application open)."""

    def work(session: Session, container: CloudContainer, actor: Actor) -> None:
        for pool in cloud.container_licenses(session, container.id):
            if any(s.lease_id == lease_id for s in seats.occupancy(session, pool.id, utcnow())):
                seats.force_release(session, actor, pool.id, lease_id, now=utcnow())
                return
        raise NotFoundError("seat lease", lease_id, code="LEASE_NOT_FOUND")

    call.run(work)
    return Response(status_code=204)


@router.get("/denials", response_model=list[Denial])
def denials(call: AdminCall = Depends(admin_call)) -> list[Denial]:
    """Every refused checkout: the "true denials" that tell whether to buy more seats."""

    def work(session: Session, container: CloudContainer, _actor: Actor) -> list[Denial]:
        return [
            Denial(license_id=e.license_id, holder_key=e.holder_key, in_use=e.in_use, at=e.at)
            for pool in cloud.container_licenses(session, container.id)
            for e in seats.seat_events(session, pool.id, "deny")
        ]

    return call.run(work)


@router.get("/devices", response_model=list[RegisteredDevice])
def registered_devices(call: AdminCall = Depends(admin_call)) -> list[RegisteredDevice]:
    def work(session: Session, container: CloudContainer, _actor: Actor) -> list[RegisteredDevice]:
        return [
            RegisteredDevice(
                id=d.id,
                name=d.name,
                created_at=d.created_at,
                last_seen_at=d.last_seen_at,
                deregistered_at=d.deregistered_at,
            )
            for d in cloud.container_devices(session, container.id)
        ]

    return call.run(work)


@router.delete("/devices/{device_id}", response_model=RegisteredDevice)
def deregister(device_id: str, call: AdminCall = Depends(admin_call)) -> RegisteredDevice:
    """Free a device slot (at most ``max_devices`` may be registered at once)."""

    def work(session: Session, container: CloudContainer, actor: Actor) -> RegisteredDevice:
        d = cloud.deregister_device(session, actor, container, device_id)
        return RegisteredDevice(
            id=d.id,
            name=d.name,
            created_at=d.created_at,
            last_seen_at=d.last_seen_at,
            deregistered_at=d.deregistered_at,
        )

    return call.run(work)
