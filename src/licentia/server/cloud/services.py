"""Cloud containers: create, redeem tickets into them, register devices, check use."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from licentia.domain.licenses import LicenseState, effective_state
from licentia.domain.templates import OPTION_DEFAULTS, StoredOptions
from licentia.server.audit.services import record
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.counters.services import open_counter
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.licenses.services import count_activations, state_of
from licentia.server.observability.metrics import ACTIVATIONS
from licentia.server.observability.tallies import tally
from licentia.server.orders.models import Ticket
from licentia.server.orders.services import find_ticket, get_customer
from licentia.server.seats.services import ensure_slots
from licentia.server.tenancy.models import Vendor

CREDENTIAL_PREFIX, DEVICE_TOKEN_PREFIX = "lcc_", "lcd_"
ACTIVATED = LicenseState.ACTIVATED
CLOUD_DELIVERIES = ("cloud", "seat_pool")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _secret(prefix: str) -> tuple[str, str]:
    public = secrets.token_hex(6)
    return public, f"{prefix}{public}_{secrets.token_urlsafe(32)}"


@dataclass(frozen=True)
class IssuedCredential:
    container: CloudContainer
    credential: str  # shown once; the customer keeps it in a .licred file


def create_container(
    session: Session,
    actor: Actor,
    *,
    customer_id: str | None,
    name: str,
    max_devices: int = OPTION_DEFAULTS.max_devices,
) -> IssuedCredential:
    """Raises NotFoundError if ``customer_id`` names no customer of the vendor."""
    assert actor.vendor_id is not None
    if customer_id is not None:
        get_customer(session, actor, customer_id)
    prefix, credential = _secret(CREDENTIAL_PREFIX)
    container = CloudContainer(
        vendor_id=actor.vendor_id,
        customer_id=customer_id,
        name=name,
        credential_prefix=prefix,
        credential_hash=_sha256(credential),
        credential_version=1,
        max_devices=max_devices,
    )
    session.add(container)
    session.flush()
    record(
        session,
        actor,
        "cloud_container.created",
        "cloud_container",
        container.id,
        after={"customer_id": customer_id, "name": name, "max_devices": max_devices},
    )
    return IssuedCredential(container, credential)


def reset_credential(session: Session, actor: Actor, container: CloudContainer) -> IssuedCredential:
    """A new credential; every device registered under the old one stops working at once."""
    prefix, credential = _secret(CREDENTIAL_PREFIX)
    container.credential_prefix, container.credential_hash = prefix, _sha256(credential)
    container.credential_version += 1
    record(
        session,
        actor,
        "cloud_container.credential_reset",
        "cloud_container",
        container.id,
        after={"credential_version": container.credential_version},
    )
    return IssuedCredential(container, credential)


MAX_NAME = 200


def container_name(name: str) -> str:
    """A container's name as typed, trimmed. Raises ValidationError (field ``name``)
    for a name that is empty or longer than 200 characters."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise ValidationError(f"a name has 1 to {MAX_NAME} characters", field="name")
    return name


def rename_container(
    session: Session, actor: Actor, container: CloudContainer, name: str
) -> CloudContainer:
    """Give the container the name its users know it by. Raises ValidationError
    as :func:`container_name`."""
    name = container_name(name)
    if name != container.name:
        before, container.name = container.name, name
        record(
            session,
            actor,
            "cloud_container.renamed",
            "cloud_container",
            container.id,
            before={"name": before},
            after={"name": name},
        )
    return container


def get_container(
    session: Session, vendor_id: str, container_id: str, *, lock: bool = False
) -> CloudContainer:
    query = select(CloudContainer).where(
        CloudContainer.id == container_id, CloudContainer.vendor_id == vendor_id
    )
    container = session.scalar(query.with_for_update() if lock else query)
    if container is None:
        raise NotFoundError("cloud container", container_id)
    return container


@dataclass(frozen=True)
class ContainerView:
    """A container with its registered devices and the ids of the licenses it holds."""

    container: CloudContainer
    devices: list[CloudDevice]
    license_ids: list[str]


def container_view(session: Session, container: CloudContainer) -> ContainerView:
    licenses = container_licenses(session, container.id)
    return ContainerView(
        container, container_devices(session, container.id), [item.id for item in licenses]
    )


def redeem_into(
    session: Session, actor: Actor, master: MasterKey, container_id: str, code: str
) -> ContainerView:
    """The vendor puts a ticket's cloud licenses into one of its containers; see
    :func:`redeem_ticket` for what it raises."""
    assert actor.vendor_id is not None
    container = get_container(session, actor.vendor_id, container_id, lock=True)
    redeem_ticket(session, actor, master, container, code)
    return container_view(session, container)


def containers_query(vendor_id: str, customer_id: str | None = None) -> Select[CloudContainer]:
    query = select(CloudContainer).where(CloudContainer.vendor_id == vendor_id)
    return query if customer_id is None else query.where(CloudContainer.customer_id == customer_id)


def redeem_ticket(
    session: Session, actor: Actor, master: MasterKey, container: CloudContainer, code: str
) -> list[License]:
    """Put the ticket's cloud and seat-pool licenses into the container (idempotent).

    Raises TICKET_CODE_INVALID / TICKET_NOT_FOUND, ``WRONG_DELIVERY`` (nothing for the
    cloud on this ticket), ``ALREADY_REDEEMED`` (its licenses sit in another container).
    """
    return put_ticket(
        session, actor, container, find_ticket(session, container.vendor_id, master, code)
    )


def put_ticket(
    session: Session, actor: Actor, container: CloudContainer, ticket: Ticket
) -> list[License]:
    """Put a found ticket's cloud and seat-pool licenses into the container; raises
    as :func:`redeem_ticket` (but for the code)."""
    licenses = list(
        session.scalars(
            select(License)
            .where(License.ticket_id == ticket.id, License.delivery.in_(CLOUD_DELIVERIES))
            .order_by(License.id)
            .with_for_update()
        )
    )
    cloud = [item for item in licenses if StoredOptions(item.options).delivery in CLOUD_DELIVERIES]
    if not cloud:
        raise ConflictError(
            "this ticket holds no cloud or seat-pool licenses", code="WRONG_DELIVERY"
        )
    if any(item.container_id not in (None, container.id) for item in cloud):
        raise ConflictError(
            "this ticket was redeemed into another container", code="ALREADY_REDEEMED"
        )
    now = utcnow()
    for item in cloud:
        if item.container_id is None and state_of(item, now) in (
            LicenseState.AVAILABLE,
            LicenseState.RETURNED,
        ):
            _place(session, actor, item, container, now)
    return [item for item in cloud if item.container_id == container.id]


def put_ticket_into_new_container(
    session: Session, actor: Actor, ticket: Ticket, name: str
) -> tuple[IssuedCredential, list[License]]:
    """A new cloud container for the ticket's customer, admitting as many devices as
    the largest ``max_devices`` of the ticket's licenses, with the ticket's cloud and
    seat-pool licenses in it. Raises ``ALREADY_REDEEMED`` for a ticket whose licenses
    are in a container already, and as :func:`put_ticket`."""
    issued = create_container(
        session,
        actor,
        customer_id=ticket.customer_id,
        name=name,
        max_devices=_max_devices(session, ticket.id),
    )
    licenses = put_ticket(session, actor, issued.container, ticket)
    if not licenses:
        raise ConflictError("this ticket was redeemed already", code="ALREADY_REDEEMED")
    return issued, licenses


def _max_devices(session: Session, ticket_id: str) -> int:
    options = session.scalars(select(License.options).where(License.ticket_id == ticket_id)).all()
    return max((StoredOptions(o).max_devices for o in options), default=OPTION_DEFAULTS.max_devices)


def _place(
    session: Session, actor: Actor, license_: License, container: CloudContainer, now: datetime
) -> None:
    license_.container_id, license_.state = container.id, LicenseState.ACTIVATED.value
    license_.activated_at = license_.activated_at or now
    license_.version += 1
    license_.updated_at = now
    ensure_slots(session, license_)
    open_counter(session, license_, now)
    vendor = session.get(Vendor, license_.vendor_id)
    if vendor is not None:
        tally(session, ACTIVATIONS, vendor.slug, license_.product_code, license_.delivery)
    record(
        session,
        actor,
        "license.activated",
        "license",
        license_.id,
        after={"state": license_.state, "container_id": container.id},
    )
    count_activations(session, license_.vendor_id, now)


# --- devices ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    device: CloudDevice
    token: str  # shown once


def container_by_credential(
    session: Session, vendor_id: str, credential: str, *, lock: bool
) -> CloudContainer:
    """Raises AuthenticationError (``CREDENTIAL_INVALID``) for an unknown or reset credential."""
    prefix = credential.removeprefix(CREDENTIAL_PREFIX).split("_", 1)[0]
    query = select(CloudContainer).where(
        CloudContainer.vendor_id == vendor_id, CloudContainer.credential_prefix == prefix
    )
    container = session.scalar(query.with_for_update() if lock else query)
    if container is None or not hmac.compare_digest(container.credential_hash, _sha256(credential)):
        raise AuthenticationError(
            "this credential is not valid (was it reset?)", code="CREDENTIAL_INVALID"
        )
    return container


def register_device(session: Session, vendor_id: str, credential: str, name: str) -> Registration:
    """Register a device; at most ``max_devices`` active per container.

    The container row is locked, so concurrent registrations are counted one after
    the other. Raises ``DEVICE_LIMIT_REACHED``.
    """
    if not 1 <= len(name) <= 200:
        raise ValidationError("a device name has 1-200 characters", field="name")
    container = container_by_credential(session, vendor_id, credential, lock=True)
    active = (
        session.scalar(
            select(func.count())
            .select_from(CloudDevice)
            .where(
                CloudDevice.container_id == container.id,
                CloudDevice.deregistered_at.is_(None),
                CloudDevice.credential_version == container.credential_version,
            )
        )
        or 0
    )
    if active >= container.max_devices:
        raise ConflictError(
            f"this container already has {active} devices; deregister one first",
            code="DEVICE_LIMIT_REACHED",
            max_devices=container.max_devices,
        )
    prefix, token = _secret(DEVICE_TOKEN_PREFIX)
    device = CloudDevice(
        vendor_id=vendor_id,
        container_id=container.id,
        name=name,
        token_prefix=prefix,
        token_hash=_sha256(token),
        credential_version=container.credential_version,
    )
    session.add(device)
    session.flush()
    actor = Actor(ActorKind.CLOUD_DEVICE, device.id, vendor_id)
    record(
        session,
        actor,
        "cloud_device.registered",
        "cloud_container",
        container.id,
        after={"device_id": device.id, "name": name},
    )
    return Registration(device, token)


def deregister_device(
    session: Session, actor: Actor, container: CloudContainer, device_id: str
) -> CloudDevice:
    device = session.scalar(
        select(CloudDevice).where(
            CloudDevice.id == device_id, CloudDevice.container_id == container.id
        )
    )
    if device is None:
        raise NotFoundError("cloud device", device_id)
    if device.deregistered_at is None:
        device.deregistered_at = utcnow()
        record(
            session,
            actor,
            "cloud_device.deregistered",
            "cloud_container",
            container.id,
            after={"device_id": device.id},
        )
    return device


def container_devices(session: Session, container_id: str) -> list[CloudDevice]:
    return list(
        session.scalars(
            select(CloudDevice)
            .where(CloudDevice.container_id == container_id)
            .order_by(CloudDevice.created_at)
        )
    )


def container_licenses(session: Session, container_id: str) -> list[License]:
    return list(
        session.scalars(
            select(License).where(License.container_id == container_id).order_by(License.id)
        )
    )


class LicenseFacts(Protocol):
    """What choosing a usable license reads: a License, or a row with these columns."""

    @property
    def product_code(self) -> str: ...
    @property
    def options(self) -> dict[str, Any]: ...
    @property
    def features(self) -> list[str]: ...
    @property
    def state(self) -> str: ...
    @property
    def valid_until(self) -> datetime | None: ...


L = TypeVar("L", bound=LicenseFacts)


def find_usable(
    session: Session,
    container_id: str,
    product: str,
    feature: str | None,
    *,
    delivery: tuple[str, ...],
    now: datetime,
) -> list[License]:
    """The container's live licenses for ``product`` (and ``feature``), best first;
    raises as :func:`choose_usable`."""
    return choose_usable(
        container_licenses(session, container_id), product, feature, delivery=delivery, now=now
    )


def choose_usable(
    licenses: Iterable[L],
    product: str,
    feature: str | None,
    *,
    delivery: tuple[str, ...],
    now: datetime,
) -> list[L]:
    """Of a container's ``licenses`` (in id order), the live ones for ``product`` (and
    ``feature``), best first.

    Raises NotFoundError ``NOT_ACTIVATED`` (no such product here), ConflictError
    ``FEATURE_MISSING``, ``EXPIRED`` or ``LICENSE_NOT_USABLE`` (suspended/withdrawn).
    """
    candidates = [
        item
        for item in licenses
        if item.product_code == product and StoredOptions(item.options).delivery in delivery
    ]
    if not candidates:
        raise NotFoundError("license for product", product, code="NOT_ACTIVATED")
    if feature is not None:
        candidates = [item for item in candidates if feature in item.features]
        if not candidates:
            raise ConflictError(
                f"no license here includes the feature {feature!r}", code="FEATURE_MISSING"
            )
    states = [effective_state(LicenseState(i.state), i.valid_until, now) for i in candidates]
    live = [item for item, state in zip(candidates, states, strict=True) if state is ACTIVATED]
    if not live:
        if LicenseState.EXPIRED in states:
            raise ConflictError("the license has expired", code="EXPIRED")
        raise ConflictError("the license is suspended or withdrawn", code="LICENSE_NOT_USABLE")
    return live
