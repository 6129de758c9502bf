"""What a cloud container's customer admin may do: see who holds which seat and free
one, read the denials, list and deregister the container's devices, rename it, read the
unit counters; in the portal also put one of the customer's tickets into a container
and reset the container's credential.
The API's customer-admin routes open a container with its credential (the ``.licred``
secret, :func:`customer_admin`); the License Portal opens one of the logged-in
customer's own containers (:func:`portal_admin`); both then call the same functions.
The vendor has the same through its own API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import NotFoundError
from licentia.server.cloud import services as cloud
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.counters import services as counters
from licentia.server.counters.models import LedgerEntry, UnitCounter
from licentia.server.customer_users.assignments import template_names
from licentia.server.db.pagination import Page, paginate
from licentia.server.licenses.models import License
from licentia.server.orders.customer_tickets import customer_ticket
from licentia.server.seats import services as seats
from licentia.server.seats.models import SeatEvent, SeatSlot
from licentia.server.tenancy.services import get_vendor_by_slug


@dataclass(frozen=True)
class CustomerAdmin:
    """Whoever presented the container's credential, and the container it opens."""

    container: CloudContainer
    actor: Actor


@dataclass(frozen=True)
class HeldSeat:
    license_id: str
    product: str
    lease_id: str | None
    user: str | None
    device: str | None
    process: str | None
    acquired_at: datetime | None
    expires_at: datetime | None
    borrowed: bool


def customer_admin(session: Session, slug: str, credential: str) -> CustomerAdmin:
    """Raises NotFoundError (no such vendor) or AuthenticationError
    (``CREDENTIAL_INVALID``: an unknown or reset credential)."""
    vendor = get_vendor_by_slug(session, slug)
    container = cloud.container_by_credential(session, vendor.id, credential, lock=False)
    return CustomerAdmin(container, Actor(ActorKind.CUSTOMER_ADMIN, container.id, vendor.id))


def portal_admin(
    session: Session, vendor_id: str, customer_id: str, user_id: str, container_id: str
) -> CustomerAdmin:
    """A customer admin logged in to the portal, opening one of their customer's
    containers. Raises NotFoundError for a container of another customer or vendor
    (the same answer as for no container at all)."""
    container = session.scalar(
        cloud.containers_query(vendor_id, customer_id).where(CloudContainer.id == container_id)
    )
    if container is None:
        raise NotFoundError("cloud container", container_id)
    return CustomerAdmin(container, Actor(ActorKind.CUSTOMER_ADMIN, user_id, vendor_id))


def put_ticket(session: Session, admin: CustomerAdmin, ticket_id: str) -> list[License]:
    """Put the cloud and seat-pool licenses of one of the container's customer's
    tickets into the container (idempotent). Raises NotFoundError for a ticket of
    another customer (or of none), ``WRONG_DELIVERY`` and ``ALREADY_REDEEMED`` as
    :func:`cloud.put_ticket`."""
    container = admin.container
    if container.customer_id is None:
        raise NotFoundError("ticket", ticket_id)
    ticket = customer_ticket(session, container.vendor_id, container.customer_id, ticket_id)
    return cloud.put_ticket(session, admin.actor, container, ticket)


def put_ticket_into_new_container(
    session: Session, vendor_id: str, customer_id: str, user_id: str, ticket_id: str, name: str
) -> cloud.IssuedCredential:
    """A new cloud container for the logged-in customer, holding the cloud and
    seat-pool licenses of one of their tickets; its credential is in the answer, this
    once. Raises NotFoundError for another customer's ticket, ValidationError (field
    ``name``) for an empty or too long name, and as
    :func:`cloud.put_ticket_into_new_container`."""
    name = cloud.container_name(name)
    ticket = customer_ticket(session, vendor_id, customer_id, ticket_id)
    actor = Actor(ActorKind.CUSTOMER_ADMIN, user_id, vendor_id)
    issued, _ = cloud.put_ticket_into_new_container(session, actor, ticket, name)
    return issued


def customer_containers(
    session: Session, vendor_id: str, customer_id: str, *, cursor: str | None, limit: int
) -> Page[CloudContainer]:
    """The customer's cloud containers, a page at a time."""
    query = cloud.containers_query(vendor_id, customer_id)
    return paginate(session, query, CloudContainer.id, cursor=cursor, limit=limit)


def held_seats(
    session: Session, admin: CustomerAdmin, now: datetime, *, cursor: str | None, limit: int
) -> Page[HeldSeat]:
    """Who holds which seat of the container's pools at ``now``, a page at a time.
    Raises ValidationError (``cursor``, ``limit``) for a malformed page request."""
    query = (
        select(SeatSlot)
        .join(License, License.id == SeatSlot.license_id)
        .where(License.container_id == admin.container.id, SeatSlot.expires_at > now)
    )
    page = paginate(session, query, SeatSlot.id, cursor=cursor, limit=limit)
    products = {pool.id: pool.product_code for pool in _pools(session, admin)}
    names = device_names(session, admin)
    held = [_held(slot, products[slot.license_id], names) for slot in page.items]
    return Page(held, page.next_cursor, page.after)


def _held(slot: SeatSlot, product: str, names: dict[str, str]) -> HeldSeat:
    return HeldSeat(
        license_id=slot.license_id,
        product=product,
        lease_id=slot.lease_id,
        user=slot.user_name,
        device=_computer(slot, names),
        process=slot.process_id,
        acquired_at=slot.acquired_at,
        expires_at=slot.expires_at,
        borrowed=slot.borrowed,
    )


def _computer(slot: SeatSlot, names: dict[str, str]) -> str | None:
    """The name the application gave the holding computer; where it gave the id of a
    registered device of the container (the SDK does when the application names no
    computer) or nothing, the name that device was registered with."""
    if slot.device_name:
        return names.get(slot.device_name, slot.device_name)
    return holder_of(slot.holder_key, names).computer


@dataclass(frozen=True)
class HolderLabel:
    """Who a seat's holder key names, for people: the user (seats counted per user),
    or the computer by its registered name (per device), and its process (per
    process)."""

    user: str | None = None
    computer: str | None = None
    process: str | None = None


def holder_of(holder_key: str | None, names: Mapping[str, str]) -> HolderLabel:
    """``holder_key`` (``u:USER``, ``d:DEVICE``, ``p:DEVICE:PROCESS``) read for people,
    with the container's registered device ``names`` by device id."""
    kind, _, rest = (holder_key or "").partition(":")
    if kind == "u":
        return HolderLabel(user=rest)
    device, _, process = rest.partition(":")
    if kind == "d":
        return HolderLabel(computer=names.get(device, device))
    if kind == "p":
        return HolderLabel(computer=names.get(device, device), process=process)
    return HolderLabel()


def device_names(session: Session, admin: CustomerAdmin) -> dict[str, str]:
    """The names the container's devices registered with, by device id."""
    devices = cloud.container_devices(session, admin.container.id)
    return {device.id: device.name for device in devices}


def _pools(session: Session, admin: CustomerAdmin) -> list[License]:
    return cloud.container_licenses(session, admin.container.id)


def release_seat(session: Session, admin: CustomerAdmin, lease_id: str, now: datetime) -> None:
    """Free a seat of the container's pools. Raises NotFoundError ``LEASE_NOT_FOUND``."""
    for pool in _pools(session, admin):
        if any(slot.lease_id == lease_id for slot in seats.occupancy(session, pool.id, now)):
            seats.force_release(session, admin.actor, pool.id, lease_id, now=now)
            return
    raise NotFoundError("seat lease", lease_id, code="LEASE_NOT_FOUND")


def denials(
    session: Session, admin: CustomerAdmin, *, cursor: str | None, limit: int
) -> Page[SeatEvent]:
    """Every refused checkout of the container's pools (the "true denials"), oldest
    first, a page at a time."""
    query = (
        select(SeatEvent)
        .join(License, License.id == SeatEvent.license_id)
        .where(License.container_id == admin.container.id, SeatEvent.kind == "deny")
    )
    return paginate(session, query, SeatEvent.id, cursor=cursor, limit=limit)


def devices(
    session: Session, admin: CustomerAdmin, *, cursor: str | None, limit: int
) -> Page[CloudDevice]:
    """The devices registered to the container (deregistered ones too), a page at a time."""
    query = select(CloudDevice).where(CloudDevice.container_id == admin.container.id)
    return paginate(session, query, CloudDevice.id, cursor=cursor, limit=limit)


def rename_container(session: Session, admin: CustomerAdmin, name: str) -> CloudContainer:
    """Raises ValidationError (field ``name``) as :func:`cloud.rename_container`."""
    return cloud.rename_container(session, admin.actor, admin.container, name)


def reset_credential(session: Session, admin: CustomerAdmin) -> cloud.IssuedCredential:
    """A new credential for the container, in the answer this once (only its hash is
    kept); every device registered with the old one stops working at once
    (``CREDENTIAL_RESET``) until it registers with the new one. The portal offers it;
    the API's customer-admin routes do not, since whoever holds a leaked credential
    could otherwise lock the company out of its own container."""
    container = cloud.get_container(
        session, admin.container.vendor_id, admin.container.id, lock=True
    )
    return cloud.reset_credential(session, admin.actor, container)


def deregister_device(session: Session, admin: CustomerAdmin, device_id: str) -> CloudDevice:
    """Free a device's place. Raises NotFoundError for a device of another container."""
    return cloud.deregister_device(session, admin.actor, admin.container, device_id)


@dataclass(frozen=True)
class Counter:
    """A unit counter of one of the container's licenses."""

    license_id: str
    product: str
    balance: int
    template_name: str = ""


def counters_of(session: Session, admin: CustomerAdmin) -> list[Counter]:
    """The unit counters of the container's licenses (licenses without one are left out),
    each with its license's product and template name."""
    pools = {pool.id: pool for pool in _pools(session, admin)}
    found = list(
        session.scalars(
            select(UnitCounter)
            .where(UnitCounter.license_id.in_(pools))
            .order_by(UnitCounter.license_id)
        )
    )
    names = template_names(session, {pools[item.license_id].template_id for item in found})
    return [
        Counter(
            item.license_id,
            pools[item.license_id].product_code,
            item.balance,
            names.get(pools[item.license_id].template_id, ""),
        )
        for item in found
    ]


@dataclass(frozen=True)
class CounterLedger:
    """One counter: its balance and a page of its ledger, oldest first."""

    license_id: str
    balance: int
    ledger: Page[LedgerEntry]


def counter(
    session: Session, admin: CustomerAdmin, license_id: str, *, cursor: str | None, limit: int
) -> CounterLedger:
    """One counter with a page of its ledger. Raises NotFoundError for a license of
    another container, ``NO_COUNTER`` for one that counts no units, ValidationError for
    a malformed page request."""
    if license_id not in {pool.id for pool in _pools(session, admin)}:
        raise NotFoundError("license", license_id)
    balance = counters.balance_of(session, license_id)
    query = select(LedgerEntry).where(LedgerEntry.license_id == license_id)
    entries = paginate(session, query, LedgerEntry.id, cursor=cursor, limit=limit)
    return CounterLedger(license_id, balance, entries)
