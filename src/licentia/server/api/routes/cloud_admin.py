"""The customer admin's view of a cloud container, authenticated by its credential.

Whoever holds the container credential (the ``.licred`` secret,
``Authorization: Bearer lcc_…``) can see who holds which seat, force-release a seat,
read the denials, deregister devices, rename the container and read its unit
counters: the use cases of ``cloud.admin``, which the License Portal's customer admin
pages call too. The vendor has the same abilities through its own API
(``/licenses/{id}/seats``, ``/cloud-containers/…``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field

from licentia.domain.errors import AuthenticationError
from licentia.server.api.bearer import Bearer
from licentia.server.api.context import Services, services_of
from licentia.server.api.schemas import NAME, PageOut, PageParams, page_of, page_params
from licentia.server.api.threads import ThreadedRoute
from licentia.server.cloud import admin
from licentia.server.cloud.admin import CustomerAdmin
from licentia.server.db.base import utcnow
from licentia.server.db.engine import run_write

router = APIRouter(
    prefix="/vendors/{slug}/cloud/admin", tags=["cloud customer admin"], route_class=ThreadedRoute
)
_bearer = Bearer(
    scheme_name="ContainerCredential",
    description="The cloud container's credential (lcc_…), from its .licred file",
)
T = TypeVar("T")
P = ParamSpec("P")


class AdminCall:
    def __init__(self, services: Services, slug: str, credential: str) -> None:
        self.services, self.slug, self.credential = services, slug, credential

    def run(
        self,
        use_case: Callable[Concatenate[Any, CustomerAdmin, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """One unit of work: the credential opens the container, then ``use_case`` runs."""
        return run_write(
            self.services.db,
            lambda s: use_case(
                s, admin.customer_admin(s, self.slug, self.credential), *args, **kwargs
            ),
        )


def admin_call(
    slug: str, request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> AdminCall:
    if credentials is None:
        raise AuthenticationError("send 'Authorization: Bearer <container credential>'")
    return AdminCall(services_of(request), slug, credentials.credentials)


class HeldSeat(BaseModel):
    model_config = ConfigDict(from_attributes=True)

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
    model_config = ConfigDict(from_attributes=True)

    license_id: str
    holder_key: str | None
    in_use: int
    at: datetime


class RegisteredDevice(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    created_at: datetime
    last_seen_at: datetime | None
    deregistered_at: datetime | None


@router.get("/seats", response_model=PageOut[HeldSeat])
def held_seats(
    page: PageParams = Depends(page_params), call: AdminCall = Depends(admin_call)
) -> PageOut[HeldSeat]:
    """Who holds which seat of the container's pools right now."""
    seats = call.run(admin.held_seats, utcnow(), cursor=page.cursor, limit=page.limit)
    return page_of(seats, HeldSeat.model_validate)


@router.delete("/seats/{lease_id}", status_code=204)
def force_release(lease_id: str, call: AdminCall = Depends(admin_call)) -> Response:
    """Free somebody's seat (a colleague left with the application open)."""
    call.run(admin.release_seat, lease_id, utcnow())
    return Response(status_code=204)


@router.get("/denials", response_model=PageOut[Denial])
def denials(
    page: PageParams = Depends(page_params), call: AdminCall = Depends(admin_call)
) -> PageOut[Denial]:
    """Every refused checkout: the "true denials" that tell whether to buy more seats."""
    return call.run(
        lambda s, a: page_of(
            admin.denials(s, a, cursor=page.cursor, limit=page.limit), Denial.model_validate
        )
    )


@router.get("/devices", response_model=PageOut[RegisteredDevice])
def registered_devices(
    page: PageParams = Depends(page_params), call: AdminCall = Depends(admin_call)
) -> PageOut[RegisteredDevice]:
    return call.run(
        lambda s, a: page_of(
            admin.devices(s, a, cursor=page.cursor, limit=page.limit),
            RegisteredDevice.model_validate,
        )
    )


@router.delete("/devices/{device_id}", response_model=RegisteredDevice)
def deregister(device_id: str, call: AdminCall = Depends(admin_call)) -> RegisteredDevice:
    """Free a device slot (at most ``max_devices`` may be registered at once)."""
    return call.run(
        lambda s, a: RegisteredDevice.model_validate(admin.deregister_device(s, a, device_id))
    )


class ContainerName(BaseModel):
    name: str = Field(max_length=NAME)


class AdminContainer(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    max_devices: int
    created_at: datetime


class UnitCounter(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    license_id: str
    product: str
    balance: int


@router.patch("/container", response_model=AdminContainer)
def rename_container(body: ContainerName, call: AdminCall = Depends(admin_call)) -> AdminContainer:
    """Give the container the name its users know it by (1 to 200 characters)."""
    return call.run(
        lambda s, a: AdminContainer.model_validate(admin.rename_container(s, a, body.name))
    )


@router.get("/counters", response_model=list[UnitCounter])
def unit_counters(call: AdminCall = Depends(admin_call)) -> list[UnitCounter]:
    """The units left on each of the container's licenses that count units."""
    return call.run(lambda s, a: [UnitCounter.model_validate(c) for c in admin.counters_of(s, a)])
