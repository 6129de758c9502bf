"""The hot calls of the cloud protocol, each in as few statements as it can take.

A heartbeat, a release, a checkout and a consumption each start with one SELECT that
authenticates the device (:mod:`licentia.server.cloud.access`) and reads what the
call needs; then one statement does the work and writes its record (seat event,
ledger row) with it (:mod:`licentia.server.seats.leases`,
:func:`licentia.server.counters.services.consume_at_once`). Run them with
:meth:`licentia.server.db.runner.Runner.autocommit`: on PostgreSQL each statement
commits on its own, so no BEGIN or COMMIT round trip and no row lock held while
Python runs.

A checkout or a consumption that is not the common case (the holder reconnects to its
own seat, others wait in line, no seat is free, the key was used before, the units
run out or cross the low-balance mark) answers None here, having changed nothing;
the caller then runs the full service in a transaction, which decides and records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    String,
    and_,
    bindparam,
    exists,
    select,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import TableValuedAlias

from licentia.domain.errors import ConflictError
from licentia.domain.ids import new_id
from licentia.domain.templates import StoredOptions
from licentia.formats.document_types import SEAT_TYP
from licentia.server.cloud.access import (
    DeviceAccess,
    access_parameters,
    access_query,
    refuse_unknown,
    token_digest,
    touch_device,
    verify_access,
)
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.cloud.services import choose_usable
from licentia.server.counters.services import consume_at_once, low_balance_threshold
from licentia.server.db.arrays import Column, unnested
from licentia.server.db.core import CoreConnection
from licentia.server.keys.master import MasterKey
from licentia.server.licenses.models import License
from licentia.server.seats import leases
from licentia.server.seats.models import SeatSlot, SeatWaiter
from licentia.server.seats.services import Holder, Lease
from licentia.server.tenancy.models import Vendor

SEAT_POOLS, CLOUD_USES = ("seat_pool",), ("cloud", "seat_pool")


@dataclass(frozen=True)
class Presented:
    """What a device call presents: the vendor's slug, its token, where it came from."""

    slug: str
    token: str
    source_ip: str | None = None

    def parameters(self) -> dict[str, Any]:
        return access_parameters(self.slug, self.token)


@dataclass(frozen=True)
class SeatGrant:
    """A lease as the device gets it: with the signed seat token."""

    lease_id: str
    license_id: str
    fence: int
    expires_at: datetime
    ttl_seconds: int
    reconnected: bool
    token: str


def lease_seconds(options: dict[str, Any]) -> int:
    return StoredOptions(options).seat_lease_seconds


def claims(access: DeviceAccess, license_: Any, now: datetime, expires: datetime) -> dict[str, Any]:
    """The claims every token about ``license_`` (a License or a row) carries."""
    return {
        "iss": access.vendor_slug,
        "sub": license_.id,
        "aud": access.container_id,
        "device": access.device_id,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "product": license_.product_code,
        "features": list(license_.features),
    }


def seat_grant(
    master: MasterKey,
    access: DeviceAccess,
    license_: Any,
    lease: Lease,
    now: datetime,
) -> SeatGrant:
    """Sign the seat token of ``lease`` on ``license_`` (a License or a row)."""
    token_claims = claims(access, license_, now, lease.expires_at)
    token_claims |= {"lease": lease.lease_id, "fence": lease.fence}
    return SeatGrant(
        lease_id=lease.lease_id,
        license_id=license_.id,
        fence=lease.fence,
        expires_at=lease.expires_at,
        ttl_seconds=lease_seconds(license_.options),
        reconnected=lease.reconnected,
        token=access.signer(master).sign(token_claims, typ=SEAT_TYP),
    )


def _authenticated(
    connection: CoreConnection, row: Row[Any] | None, who: Presented
) -> DeviceAccess:
    if row is None:
        refuse_unknown(connection, who.slug)
    return verify_access(row, who.token)


_ACCESS_QUERY = access_query()


def authenticate(connection: CoreConnection, who: Presented) -> DeviceAccess:
    """The access of a call that reads nothing else with it (one SELECT)."""
    row = connection.execute(_ACCESS_QUERY, who.parameters()).first()
    return _authenticated(connection, row, who)


# -- heartbeat and release -----------------------------------------------------------------

# What a token about a license needs of it (:func:`claims`, :func:`seat_grant`).
GRANT_COLUMNS = (
    License.id.label("id"),
    License.options.label("options"),
    License.product_code.label("product_code"),
    License.features.label("features"),
)
_LEASE_QUERY = (
    access_query(SeatSlot.holder_key.label("holder_key"), *GRANT_COLUMNS)
    .outerjoin(
        SeatSlot,
        and_(SeatSlot.vendor_id == CloudDevice.vendor_id, SeatSlot.lease_id == bindparam("lease")),
    )
    .outerjoin(
        License, and_(License.id == SeatSlot.license_id, License.container_id == CloudContainer.id)
    )
)


def device_access_holds(
    slug: ColumnElement[Any], prefix: ColumnElement[Any], digest: ColumnElement[Any]
) -> tuple[ColumnElement[bool], ...]:
    """The access check of a device call (the vendor ``slug``, the token's ``prefix``
    and ``digest``), as WHERE conditions over the device, its container and vendor."""
    return (
        Vendor.slug == slug,
        CloudDevice.token_prefix == prefix,
        CloudDevice.token_hash == digest,
        CloudDevice.deregistered_at.is_(None),
        CloudDevice.credential_version == CloudContainer.credential_version,
        CloudContainer.id == CloudDevice.container_id,
        Vendor.id == CloudDevice.vendor_id,
    )


@dataclass(frozen=True)
class LeaseCall:
    """A device's call about one of its leases (a heartbeat, a release), as the
    batched statements take it (:mod:`licentia.server.cloud.renewals`,
    :mod:`licentia.server.cloud.releases`)."""

    who: Presented
    lease_id: str
    fence: int


def lease_calls_table(*extra: Column, numbered: bool = False) -> TableValuedAlias:
    """The lease calls of a batch as rows ``wanted`` (lease, fence, and the access
    they present: token digest, vendor slug, token prefix), with ``extra`` columns;
    :func:`lease_call_arrays` gives its parameters."""
    return unnested(
        "wanted",
        ("leases", "lease", String),
        ("fences", "fence", Integer),
        ("digests", "digest", String),
        ("slugs", "slug", String),
        ("prefixes", "prefix", String),
        *extra,
        numbered=numbered,
    )


def lease_call_arrays(calls: list[LeaseCall]) -> dict[str, list[Any]]:
    """The parameters of :func:`lease_calls_table` for ``calls``, in their order."""
    return {
        "leases": [call.lease_id for call in calls],
        "fences": [call.fence for call in calls],
        "digests": [token_digest(call.who.token) for call in calls],
        "slugs": [call.who.slug for call in calls],
        "prefixes": [call.who.parameters()["prefix"] for call in calls],
    }


def renew_seat(
    connection: CoreConnection,
    master: MasterKey,
    who: Presented,
    lease_id: str,
    fence: int,
    *,
    now: datetime,
) -> SeatGrant:
    """A heartbeat in two statements (access and lease; the renewal). Raises
    ConflictError ``SEAT_LOST`` if the seat is not this container's or no longer
    this lease's, and the access errors."""
    row = connection.execute(_LEASE_QUERY, who.parameters() | {"lease": lease_id}).first()
    access = _authenticated(connection, row, who)
    assert row is not None
    if row.id is None:
        raise ConflictError("this seat is no longer yours; check out again", code="SEAT_LOST")
    until = now + timedelta(seconds=lease_seconds(row.options))
    leases.renew(connection, access.vendor_id, lease_id, fence, until=until)
    touch_device(connection, access, now)
    return seat_grant(master, access, row, Lease(lease_id, row.id, fence, until), now)


_RELEASE_AT_ONCE = leases.end_statement(
    select(SeatSlot.id, SeatSlot.license_id, SeatSlot.holder_key, SeatSlot.vendor_id)
    .where(
        *device_access_holds(bindparam("slug"), bindparam("prefix"), bindparam("digest")),
        SeatSlot.vendor_id == CloudDevice.vendor_id,
        SeatSlot.lease_id == bindparam("lease"),
        SeatSlot.fence == bindparam("held_fence"),
        License.id == SeatSlot.license_id,
        License.container_id == CloudContainer.id,
    )
    .with_for_update(of=SeatSlot)
)


def release_seat(
    connection: CoreConnection, who: Presented, lease_id: str, fence: int, *, now: datetime
) -> None:
    """Free the seat of ``lease_id`` at once, if the lease still has ``fence``: on
    PostgreSQL one statement (the release with its event, checking the device's access
    as it goes); else, and when that released nothing (to say why, or to find a
    release harmless), two: access and lease, then the release. Releasing twice, a
    stale fence, or a lease of another container is harmless: nothing is freed. The
    one-statement release does not note the device's visit (its checkout and
    heartbeats did)."""
    lease = {"lease": lease_id, "held_fence": fence}
    if connection.dialect.name == "postgresql":
        parameters = who.parameters() | lease | {"digest": token_digest(who.token)}
        parameters |= {"now": now, "kind": "release", "event_id": new_id()}
        if connection.execute(_RELEASE_AT_ONCE, parameters).first() is not None:
            return
    row = connection.execute(_LEASE_QUERY, who.parameters() | lease).first()
    access = _authenticated(connection, row, who)
    assert row is not None
    if row.id is not None:
        leases.end(connection, access.vendor_id, lease_id, now=now, kind="release", fence=fence)
    touch_device(connection, access, now)


# -- checkout and consumption ----------------------------------------------------------------

_LICENSE_COLUMNS = (
    *GRANT_COLUMNS,
    License.state.label("state"),
    License.valid_until.label("valid_until"),
)


def _product_query(*columns: Any) -> Any:
    """Access, and the container's licenses for the product ``product``, in id order."""
    return (
        access_query(*_LICENSE_COLUMNS, *columns)
        .outerjoin(
            License,
            and_(
                License.container_id == CloudContainer.id,
                License.product_code == bindparam("product"),
            ),
        )
        .order_by(License.id)
    )


_WAITING = exists(
    select(SeatWaiter.id).where(
        SeatWaiter.queue == CloudContainer.id + bindparam("queue_suffix"),
        SeatWaiter.expires_at > bindparam("now", type_=SeatWaiter.expires_at.type),
    )
).label("waiting")
_CHECKOUT_QUERY = _product_query(_WAITING)
_CONSUME_QUERY = _product_query()


@dataclass(frozen=True)
class SeatWanted:
    """A checkout as the device asks for it."""

    product: str
    feature: str | None
    user: str
    device: str
    process: str

    def holder(self, device_id: str) -> Holder:
        """The holder this checkout is for, on the authenticated device ``device_id``
        (``device`` is only the name the seat shows)."""
        return Holder(self.user, device_id, self.process, device_name=self.device)

    def queue_suffix(self) -> str:
        """The waiting line's name after the container id (see the checkout route)."""
        return f":{self.product}:{self.feature or ''}"


@dataclass(frozen=True)
class SeatClaim:
    """A checkout ready to take a seat: who takes it, the pool, and what to record."""

    access: DeviceAccess
    pool: Any  # a row of the checkout query: what :func:`seat_grant` needs
    claim: leases.Claim

    def granted(self, master: MasterKey, lease_id: str, fence: int) -> SeatGrant:
        lease = Lease(lease_id, self.pool.id, fence, self.claim.expires_at)
        return seat_grant(master, self.access, self.pool, lease, self.claim.now)


def claim_seat(
    connection: CoreConnection, who: Presented, wanted: SeatWanted, *, now: datetime
) -> SeatClaim | None:
    """The claim of a new lease on the first usable pool (one statement: access and
    pools), or None when others wait in line (the full checkout decides). Raises the
    access errors and those of :func:`licentia.server.cloud.services.choose_usable`."""
    parameters = who.parameters() | {
        "product": wanted.product,
        "queue_suffix": wanted.queue_suffix(),
        "now": now,
    }
    rows = connection.execute(_CHECKOUT_QUERY, parameters).all()
    access = _authenticated(connection, rows[0] if rows else None, who)
    found = [row for row in rows if row.id is not None]
    pool = choose_usable(found, wanted.product, wanted.feature, delivery=SEAT_POOLS, now=now)[0]
    if rows[0].waiting:
        return None
    holder = wanted.holder(access.device_id)
    claim = leases.Claim(
        license_id=pool.id,
        vendor_id=access.vendor_id,
        holder_key=holder.key(StoredOptions(pool.options).seat_counting),
        user=wanted.user,
        device=wanted.device,
        process=wanted.process,
        now=now,
        expires_at=now + timedelta(seconds=lease_seconds(pool.options)),
    )
    return SeatClaim(access, pool, claim)


def take_seat(
    connection: CoreConnection,
    master: MasterKey,
    who: Presented,
    wanted: SeatWanted,
    *,
    now: datetime,
) -> SeatGrant | None:
    """A new lease on the first usable pool's lowest free seat, in two statements
    (:func:`claim_seat`; the take with its checkout event). None, having taken nothing,
    when the full checkout must decide (see the module docstring). Raises as
    :func:`claim_seat`."""
    claimed = claim_seat(connection, who, wanted, now=now)
    if claimed is None:
        return None
    lease_id, taken = leases.take_free(connection, claimed.claim)
    if taken.fence is None:
        return None
    touch_device(connection, claimed.access, now)
    return claimed.granted(master, lease_id, taken.fence)


@dataclass(frozen=True)
class Consumed:
    license_id: str
    units: int
    balance_after: int
    key: str
    replayed: bool = False


@dataclass(frozen=True)
class UnitsWanted:
    """A consumption as the device asks for it."""

    product: str
    feature: str | None
    units: int
    key: str  # the consumption's idempotency key


@dataclass(frozen=True)
class Counter:
    """The counter a consumption takes its units from, and the device that takes them."""

    access: DeviceAccess
    license_id: str
    low_balance: int  # :func:`licentia.server.counters.services.low_balance_threshold`


def find_counter(
    connection: CoreConnection, who: Presented, product: str, feature: str | None, *, now: datetime
) -> Counter:
    """The first usable counter for ``product`` (one statement: access and licenses).
    Raises ConflictError ``NO_COUNTER``, the access errors and those of
    ``choose_usable``."""
    rows = connection.execute(_CONSUME_QUERY, who.parameters() | {"product": product}).all()
    access = _authenticated(connection, rows[0] if rows else None, who)
    found = [row for row in rows if row.id is not None]
    usable = choose_usable(found, product, feature, delivery=CLOUD_USES, now=now)
    counted = [row for row in usable if StoredOptions(row.options).units is not None]
    if not counted:
        raise ConflictError("no license here counts units", code="NO_COUNTER")
    return Counter(access, counted[0].id, low_balance_threshold(counted[0].options))


def consume_units(
    connection: CoreConnection,
    who: Presented,
    product: str,
    feature: str | None,
    units: int,
    key: str,
    *,
    now: datetime,
) -> Consumed | None:
    """Take ``units`` from the first usable counter for ``product``, in two statements
    (:func:`find_counter`; the balance with its ledger row). None, having taken
    nothing, when the full consumption must decide. Raises as :func:`find_counter`."""
    counter = find_counter(connection, who, product, feature, now=now)
    taken = consume_at_once(
        connection,
        license_id=counter.license_id,
        vendor_id=counter.access.vendor_id,
        actor_id=counter.access.device_id,
        units=units,
        key=key,
        low_balance=counter.low_balance,
        now=now,
    )
    if taken is None:
        return None
    touch_device(connection, counter.access, now)
    return Consumed(counter.license_id, units, taken.balance_after, key)
