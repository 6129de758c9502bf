"""A device call's access check, read in the same statement as the call's own data.

A registered device sends its token (``lcd_<prefix>_<secret>``) with every call. The
hot calls of the cloud protocol (checkout, heartbeat, release, consume) read the
registration, its container, the vendor and the vendor's current signing key in the
very SELECT that also reads what the call needs (the lease's license, the container's
licenses for a product): :func:`access_query` is that SELECT's common part, and
:func:`verify_access` checks one of its rows. Nothing is cached between calls, so a
deregistration or a credential reset takes effect at once, on every node.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import Row, Select, and_, bindparam, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import AuthenticationError, ConflictError, NotFoundError
from licentia.server.cloud.models import CloudContainer, CloudDevice
from licentia.server.cloud.services import DEVICE_TOKEN_PREFIX
from licentia.server.db.base import UTCDateTime
from licentia.server.db.core import CoreConnection
from licentia.server.keys.master import MasterKey
from licentia.server.keys.models import SigningKey
from licentia.server.keys.services import CURRENT, Signer, unsealed_signer
from licentia.server.tenancy.models import Vendor

_UNKNOWN_TOKEN = "unknown device token; register this device again"  # noqa: S105 - a message
# Writing the device row on every call would queue all of one device's calls on that
# row's lock; "last seen" needs no more than a minute's precision.
LAST_SEEN_STEP = timedelta(minutes=1)

_ACCESS_COLUMNS: tuple[ColumnElement[Any], ...] = (
    Vendor.id.label("vendor_id"),
    Vendor.slug.label("vendor_slug"),
    CloudDevice.id.label("device_id"),
    CloudDevice.token_hash.label("token_hash"),
    CloudDevice.deregistered_at.label("deregistered_at"),
    CloudDevice.credential_version.label("device_version"),
    CloudDevice.last_seen_at.label("last_seen_at"),
    CloudContainer.id.label("container_id"),
    CloudContainer.credential_version.label("container_version"),
    SigningKey.kid.label("kid"),
    SigningKey.private_key_encrypted.label("sealed_key"),
)


def access_query(*columns: ColumnElement[Any]) -> Select[Any]:
    """SELECT the access columns (and ``columns``) of the registration whose token
    prefix is the bound parameter ``prefix``, under the vendor ``slug``. Callers add
    outer joins for their own columns; each row then repeats the access columns."""
    return (
        select(*_ACCESS_COLUMNS, *columns)
        .select_from(CloudDevice)
        .join(CloudContainer, CloudContainer.id == CloudDevice.container_id)
        .join(Vendor, Vendor.id == CloudDevice.vendor_id)
        .outerjoin(
            SigningKey, and_(SigningKey.vendor_id == Vendor.id, SigningKey.status == CURRENT)
        )
        .where(Vendor.slug == bindparam("slug"), CloudDevice.token_prefix == bindparam("prefix"))
    )


def access_parameters(slug: str, token: str) -> dict[str, str]:
    """The bound parameters :func:`access_query` needs."""
    return {"slug": slug, "prefix": token.removeprefix(DEVICE_TOKEN_PREFIX).split("_", 1)[0]}


@dataclass(frozen=True)
class DeviceAccess:
    """An authenticated device call: who calls, and with which key to sign answers."""

    vendor_id: str
    vendor_slug: str
    device_id: str
    container_id: str
    last_seen_at: datetime | None
    kid: str | None
    sealed_key: bytes | None

    def actor(self, source_ip: str | None) -> Actor:
        return Actor(ActorKind.CLOUD_DEVICE, self.device_id, self.vendor_id, frozenset(), source_ip)

    def signer(self, master: MasterKey) -> Signer:
        """Raises ConflictError (``NO_SIGNING_KEY``) if the vendor has no current key."""
        if self.kid is None or self.sealed_key is None:
            raise ConflictError("this vendor has no signing key yet", code="NO_SIGNING_KEY")
        return unsealed_signer(master, self.kid, self.sealed_key)


def token_digest(token: str) -> str:
    """How a device token is stored: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def verify_access(row: Row[Any] | None, token: str) -> DeviceAccess:
    """The access a row of :func:`access_query` grants to ``token``. Raises
    AuthenticationError for an unknown token (``row`` None or another secret), a
    deregistered device (``DEVICE_DEREGISTERED``) or a reset credential
    (``CREDENTIAL_RESET``). A None row may also mean an unknown vendor: callers that
    got none ask :func:`refuse_unknown` which."""
    if row is None or not hmac.compare_digest(row.token_hash, token_digest(token)):
        raise AuthenticationError(_UNKNOWN_TOKEN)
    if row.deregistered_at is not None:
        raise AuthenticationError("this device was deregistered", code="DEVICE_DEREGISTERED")
    if row.device_version != row.container_version:
        raise AuthenticationError(
            "the container's credential was reset; register again", code="CREDENTIAL_RESET"
        )
    return DeviceAccess(
        vendor_id=row.vendor_id,
        vendor_slug=row.vendor_slug,
        device_id=row.device_id,
        container_id=row.container_id,
        last_seen_at=row.last_seen_at,
        kid=row.kid,
        sealed_key=row.sealed_key,
    )


def refuse_unknown(connection: CoreConnection, slug: str) -> NoReturn:
    """Raise the error for a call whose access query found no row: NotFoundError for
    an unknown vendor, else AuthenticationError (an unknown token)."""
    if connection.scalar(_VENDOR_BY_SLUG, {"slug": slug}) is None:
        raise NotFoundError("vendor", slug)
    raise AuthenticationError(_UNKNOWN_TOKEN)


def seen_lately(access: DeviceAccess, now: datetime) -> bool:
    """Whether the device's last visit is noted to the minute already."""
    return access.last_seen_at is not None and now - access.last_seen_at < LAST_SEEN_STEP


def touch_device(connection: CoreConnection, access: DeviceAccess, now: datetime) -> None:
    """Note when the device was last seen, at most once a minute (one UPDATE then)."""
    if seen_lately(access, now):
        return
    connection.execute(
        _TOUCH, {"device": access.device_id, "now": now, "seen_before": now - LAST_SEEN_STEP}
    )


_VENDOR_BY_SLUG = select(Vendor.id).where(Vendor.slug == bindparam("slug"))
_TOUCH = (
    update(CloudDevice)
    .where(
        CloudDevice.id == bindparam("device"),
        or_(
            CloudDevice.last_seen_at.is_(None),
            CloudDevice.last_seen_at <= bindparam("seen_before", type_=UTCDateTime()),
        ),
    )
    .values(last_seen_at=bindparam("now", type_=UTCDateTime()))
)
