"""Named licenses and seats: a customer's license assigned to the people of the
customer who use it. A seat pool has as many places as seats (each assignment names
one of its seats); any other license has one place (it is named to one person).

The customer admin assigns and removes in the License Portal, the vendor through its
API (``/licenses/{id}/assignments``); both call these use cases, scoped to one
customer (the portal) or to the vendor (the API). An assignment records who a license
or seat is meant for: it is shown to both, and it does not change who may check a
seat out (docs/portal.md, Users).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import ConflictError, NotFoundError
from licentia.domain.templates import StoredOptions
from licentia.server.audit.services import record
from licentia.server.catalog.models import Template
from licentia.server.customer_users.models import CustomerUser, LicenseAssignment
from licentia.server.db.base import utcnow
from licentia.server.licenses.models import License

SEAT_POOL = "seat_pool"


@dataclass(frozen=True)
class Assignee:
    """One person a license or seat is named to."""

    customer_user_id: str
    email: str
    assigned_at: datetime


@dataclass(frozen=True)
class NamedLicense:
    """A license of the customer, its places, and who holds them."""

    license_id: str
    product_code: str
    delivery: str
    state: str
    places: int
    assignees: list[Assignee]
    template_name: str = ""

    @property
    def free(self) -> int:
        return max(0, self.places - len(self.assignees))


def places_of(license_: License) -> int:
    """How many people a license can be named to: a seat pool's seats, else one."""
    if license_.delivery == SEAT_POOL:
        return StoredOptions(license_.options).seats or 0
    return 1


def _license(
    session: Session, vendor_id: str, customer_id: str | None, license_id: str, *, lock: bool
) -> License:
    """The vendor's license (of ``customer_id`` when given); NotFoundError otherwise."""
    query = select(License).where(License.id == license_id, License.vendor_id == vendor_id)
    if customer_id is not None:
        query = query.where(License.customer_id == customer_id)
    license_ = session.scalar(query.with_for_update() if lock else query)
    if license_ is None:
        raise NotFoundError("license", license_id)
    return license_


def _person(session: Session, license_: License, customer_user_id: str) -> CustomerUser:
    """An active user of the license's customer; NotFoundError for anybody else."""
    person = session.scalar(
        select(CustomerUser).where(
            CustomerUser.id == customer_user_id,
            CustomerUser.vendor_id == license_.vendor_id,
            CustomerUser.customer_id == license_.customer_id,
            CustomerUser.disabled_at.is_(None),
        )
    )
    if person is None or license_.customer_id is None:
        raise NotFoundError("customer user", customer_user_id)
    return person


def assign_license(
    session: Session,
    actor: Actor,
    license_id: str,
    customer_user_id: str,
    *,
    customer_id: str | None = None,
) -> Assignee:
    """Name the license (a seat pool: one of its seats) to a user of its customer.

    Idempotent: assigning the same person again answers their assignment. The license
    row is locked while its places are counted, so two concurrent assignments never
    fill more places than it has. Raises NotFoundError for a license of another
    vendor (or of another customer than ``customer_id``) and for a person who is not
    an active user of the license's customer, ConflictError
    ``ASSIGNMENT_LIMIT_REACHED`` when every place is taken."""
    assert actor.vendor_id is not None
    license_ = _license(session, actor.vendor_id, customer_id, license_id, lock=True)
    person = _person(session, license_, customer_user_id)
    existing = session.scalar(_assignment(license_.id, person.id))
    if existing is not None:
        return Assignee(person.id, person.email, existing.assigned_at)
    taken = (
        session.scalar(select(func.count()).where(LicenseAssignment.license_id == license_.id)) or 0
    )
    places = places_of(license_)
    if taken >= places:
        raise ConflictError(
            f"this license can be named to {places} people, and all are named",
            code="ASSIGNMENT_LIMIT_REACHED",
            places=places,
        )
    assignment = LicenseAssignment(
        vendor_id=license_.vendor_id,
        license_id=license_.id,
        customer_user_id=person.id,
        assigned_at=utcnow(),
    )
    session.add(assignment)
    session.flush()
    record(
        session,
        actor,
        "license.assigned",
        "license",
        license_.id,
        after={"customer_user_id": person.id, "email": person.email},
    )
    return Assignee(person.id, person.email, assignment.assigned_at)


def unassign_license(
    session: Session,
    actor: Actor,
    license_id: str,
    customer_user_id: str,
    *,
    customer_id: str | None = None,
) -> None:
    """Free the place the person holds. Raises NotFoundError for a license as in
    :func:`assign_license`, and ``ASSIGNMENT_NOT_FOUND`` when the license is not
    named to that person."""
    assert actor.vendor_id is not None
    license_ = _license(session, actor.vendor_id, customer_id, license_id, lock=True)
    assignment = session.scalar(_assignment(license_.id, customer_user_id))
    if assignment is None:
        raise NotFoundError("assignment", customer_user_id, code="ASSIGNMENT_NOT_FOUND")
    session.delete(assignment)
    record(
        session,
        actor,
        "license.unassigned",
        "license",
        license_.id,
        before={"customer_user_id": customer_user_id},
    )


def _assignment(license_id: str, customer_user_id: str) -> Select[LicenseAssignment]:
    return select(LicenseAssignment).where(
        LicenseAssignment.license_id == license_id,
        LicenseAssignment.customer_user_id == customer_user_id,
    )


def license_assignees(
    session: Session, vendor_id: str, license_id: str, *, customer_id: str | None = None
) -> list[Assignee]:
    """Who the license is named to, in the order they were named. Raises
    NotFoundError as :func:`assign_license`."""
    license_ = _license(session, vendor_id, customer_id, license_id, lock=False)
    return _assignees(session, [license_.id]).get(license_.id, [])


def _assignees(session: Session, license_ids: list[str]) -> dict[str, list[Assignee]]:
    found: dict[str, list[Assignee]] = {}
    rows = session.execute(
        select(
            LicenseAssignment.license_id,
            CustomerUser.id,
            CustomerUser.email,
            LicenseAssignment.assigned_at,
        )
        .join(CustomerUser, CustomerUser.id == LicenseAssignment.customer_user_id)
        .where(LicenseAssignment.license_id.in_(license_ids))
        .order_by(LicenseAssignment.id)
    )
    for license_id, user_id, email, assigned_at in rows:
        found.setdefault(license_id, []).append(Assignee(user_id, email, assigned_at))
    return found


NAMEABLE_STATES = ("available", "activated", "returned", "suspended")
MAX_LISTED = 500


def named_licenses(session: Session, vendor_id: str, customer_id: str) -> list[NamedLicense]:
    """The customer's licenses that can be named (not withdrawn, expired or replaced),
    oldest first, each with its template's name, its places and who holds them (three
    queries)."""
    licenses = list(
        session.scalars(
            select(License)
            .where(
                License.vendor_id == vendor_id,
                License.customer_id == customer_id,
                License.state.in_(NAMEABLE_STATES),
            )
            .order_by(License.id)
            .limit(MAX_LISTED)
        )
    )
    assignees = _assignees(session, [item.id for item in licenses])
    names = template_names(session, {item.template_id for item in licenses})
    return [
        NamedLicense(
            item.id,
            item.product_code,
            item.delivery,
            item.state,
            places_of(item),
            assignees.get(item.id, []),
            names.get(item.template_id, ""),
        )
        for item in licenses
    ]


def template_names(session: Session, template_ids: set[str]) -> dict[str, str]:
    """The names of these templates, by id (one query for a whole list)."""
    if not template_ids:
        return {}
    rows = session.execute(select(Template.id, Template.name).where(Template.id.in_(template_ids)))
    return {template_id: name for template_id, name in rows}
