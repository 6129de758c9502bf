"""What the verified licenses allow, indexed for a license check that only compares times.

Every document is verified once — at cold start and after each update — and turned
into :class:`Entitlement` values. What cannot change until the next update (the
fingerprint match, the VM policy) is decided then as well. :class:`EntitlementIndex`
keeps them by ``(product, feature)``, so :meth:`EntitlementIndex.check` is a dict
lookup and a few float comparisons: no signature, no disk, no network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

from licentia.client._exceptions import (
    FeatureMissingError,
    FingerprintMismatchError,
    LeaseExpiredError,
    LicenseExpiredError,
    LicentiaClientError,
    MaintenanceEndedError,
    NotActivatedError,
    fresh_copy,
)
from licentia.client._fingerprint import (
    Tolerance,
    ensure_fingerprint_matches,
    fingerprint_matches,
)
from licentia.client._frozen import FrozenValue
from licentia.client._virtualization import Virtualization, ensure_virtualization_allowed

__all__ = ["Entitlement", "EntitlementIndex", "Grant", "grant_from_claims"]


class Entitlement(FrozenValue):
    """One license on this device, as its verified document says; read-only.

    Times are timezone-aware UTC. ``valid_until`` and ``maintenance_until`` are None
    when the license has no such end. ``secret_data`` is decrypted with the device's
    key on first access (raises SignatureInvalidError if that fails). Two entitlements
    are equal only if they are the same object.
    """

    # No __slots__: secret_data is cached in the instance's __dict__.
    _fields = (
        "license_id",
        "product",
        "features",
        "version",
        "issued_at",
        "valid_until",
        "lease_until",
        "refresh_after",
        "maintenance_until",
        "public_data",
        "protected_data",
        "options",
        "_secret",
        "_open_secret",
    )
    _repr_hidden = frozenset({"options", "_secret", "_open_secret"})
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    license_id: str
    product: str
    features: frozenset[str]
    version: int
    issued_at: datetime
    valid_until: datetime | None
    lease_until: datetime
    refresh_after: datetime
    maintenance_until: datetime | None
    public_data: str | None
    protected_data: Mapping[str, Any] | None
    options: Mapping[str, Any]
    _secret: str | None
    _open_secret: Callable[[str], str] | None

    def __init__(
        self,
        license_id: str,
        product: str,
        features: frozenset[str],
        version: int,
        issued_at: datetime,
        valid_until: datetime | None,
        lease_until: datetime,
        refresh_after: datetime,
        maintenance_until: datetime | None,
        public_data: str | None,
        protected_data: Mapping[str, Any] | None,
        options: Mapping[str, Any],
        _secret: str | None = None,
        _open_secret: Callable[[str], str] | None = None,
    ) -> None:
        self._assign(
            license_id,
            product,
            features,
            version,
            issued_at,
            valid_until,
            lease_until,
            refresh_after,
            maintenance_until,
            public_data,
            protected_data,
            options,
            _secret,
            _open_secret,
        )

    @property
    def has_secret_data(self) -> bool:
        return self._secret is not None

    @cached_property
    def secret_data(self) -> str | None:
        """The secret data the vendor encrypted to this device, or None if there is none."""
        if self._secret is None or self._open_secret is None:
            return None
        return self._open_secret(self._secret)


class Grant(NamedTuple):
    """An entitlement with its limits as epoch seconds, and what refuses it outright.
    (A named tuple: every cold start builds one per license, and reads it on every
    check.)"""

    entitlement: Entitlement
    valid_until: float
    lease_until: float
    maintenance_until: date | None
    refusal: LicentiaClientError | None

    def refuse(self, now: float, release_date: date | None) -> LicentiaClientError | None:
        """Why the license does not allow use at ``now`` (epoch seconds), or None."""
        if self.refusal is not None:
            return fresh_copy(self.refusal)
        if now >= self.valid_until:
            return _expired(self.entitlement)
        if now >= self.lease_until:
            return _lease_expired(self.entitlement)
        if (
            release_date is not None
            and self.maintenance_until is not None
            and release_date > self.maintenance_until
        ):
            return _maintenance_ended(self.entitlement, release_date)
        return None


def grant_from_claims(
    claims: Mapping[str, Any],
    fingerprint: Mapping[str, str],
    virtualization: Virtualization,
    open_secret: Callable[[str], str] | None,
) -> Grant:
    """Build the grant of one verified license document on this device.
    ``open_secret`` decrypts its secret data (None: it has none)."""
    secret = claims.get("secret_data")
    protected = claims.get("protected_data")
    public = claims.get("public_data")
    valid_until, maintenance_until = claims["valid_until"], claims["maintenance_until"]
    lease_until = claims["lease_until"]
    maintenance = None if maintenance_until is None else _from_epoch(maintenance_until, UTC)
    # Every field set at once: __init__ sets each one through object.__setattr__, three
    # times the cost, and every cold start builds one entitlement per license. The
    # instance is the one __init__ would build.
    entitlement = _new_instance(Entitlement)
    vars(entitlement).update(
        license_id=claims["sub"],
        product=claims["product"],
        features=frozenset(claims["features"]),
        version=claims["ver"],
        issued_at=_from_epoch(claims["iat"], UTC),
        valid_until=None if valid_until is None else _from_epoch(valid_until, UTC),
        lease_until=_from_epoch(lease_until, UTC),
        refresh_after=_from_epoch(claims["refresh_after"], UTC),
        maintenance_until=maintenance,
        public_data=public if isinstance(public, str) else None,
        protected_data=protected if isinstance(protected, dict) else None,
        options=dict(claims["options"]),
        _secret=secret if isinstance(secret, str) else None,
        _open_secret=open_secret,
    )
    return Grant(
        entitlement,
        math.inf if valid_until is None else float(valid_until),
        float(lease_until),
        None if maintenance is None else maintenance.date(),
        _device_refusal(claims, fingerprint, virtualization),
    )


def _device_refusal(
    claims: Mapping[str, Any], fingerprint: Mapping[str, str], virtualization: Virtualization
) -> LicentiaClientError | None:
    """Fingerprint and VM policy: they cannot change until the next update."""
    options = claims["options"]
    try:
        tolerance = Tolerance.from_option(options.get("fingerprint_tolerance"))
        if not fingerprint_matches(claims["fingerprint"], fingerprint, tolerance):
            ensure_fingerprint_matches(claims["fingerprint"], fingerprint, tolerance)
        if options.get("vm_policy") == "deny" and virtualization.is_virtual:
            ensure_virtualization_allowed(virtualization, allow_vm=False, allow_container=False)
    except LicentiaClientError as refusal:
        return refusal
    except (ValueError, TypeError):
        # An option this SDK does not understand must not let the license through.
        return FingerprintMismatchError(
            f"License {claims['sub']} asks for a fingerprint tolerance this SDK does not "
            "know. Update the application, or contact your vendor."
        )
    return None


class EntitlementIndex:
    """The grants of one container state, by ``(product, feature)``; immutable."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        # The longest lease first, ties by license id: two sorts that keep the order of
        # equal keys, with keys read in C (every cold start builds the index).
        ordered = sorted(sorted(grants, key=_license_id_of), key=_lease_until_of, reverse=True)
        by_key: dict[tuple[str, str | None], list[Grant]] = {}
        for grant in ordered:
            entitlement = grant.entitlement
            by_key.setdefault((entitlement.product, None), []).append(grant)
            for feature in entitlement.features:
                by_key.setdefault((entitlement.product, feature), []).append(grant)
        self._by_key = dict(zip(by_key, map(tuple, by_key.values()), strict=True))
        self.grants: tuple[Grant, ...] = tuple(ordered)
        self.entitlements = tuple(sorted(map(_entitlement_of, ordered), key=_by_id))

    def candidates(self, product: str, feature: str | None) -> tuple[Grant, ...]:
        """The grants for ``product`` (and ``feature``), most promising first (the
        longest lease). Raises NotActivatedError or FeatureMissingError if none."""
        grants = self._by_key.get((product, feature))
        if grants is None:
            raise self._missing(product, feature)
        return grants

    @staticmethod
    def choose(grants: tuple[Grant, ...], now: float, release_date: date | None) -> Entitlement:
        """The first of ``grants`` that allows use at ``now`` (epoch seconds); raises
        the refusal of the first one otherwise."""
        first_refusal = None
        for grant in grants:
            refusal = grant.refuse(now, release_date)
            if refusal is None:
                return grant.entitlement
            first_refusal = first_refusal or refusal
        assert first_refusal is not None
        raise first_refusal

    def _missing(self, product: str, feature: str | None) -> LicentiaClientError:
        if feature is not None and (product, None) in self._by_key:
            return FeatureMissingError(
                f"Your {product} license does not include the feature {feature!r}. "
                "Contact your vendor to add it."
            )
        return NotActivatedError(
            f"{product} is not activated on this device. "
            "Enter your ticket in the activation wizard to activate it."
        )


_by_id = attrgetter("license_id")
_entitlement_of = attrgetter("entitlement")
_license_id_of = attrgetter("entitlement.license_id")
_lease_until_of = attrgetter("lease_until")
_from_epoch = datetime.fromtimestamp
_new_instance = object.__new__


def _expired(entitlement: Entitlement) -> LicenseExpiredError:
    return LicenseExpiredError(
        f"Your {entitlement.product} license expired on {_day(entitlement.valid_until)}. "
        "Contact your vendor to renew it."
    )


def _lease_expired(entitlement: Entitlement) -> LeaseExpiredError:
    return LeaseExpiredError(
        f"The offline lease of your {entitlement.product} license ran out on "
        f"{_day(entitlement.lease_until)}. Connect this device to the internet once so "
        "the license can sync."
    )


def _maintenance_ended(entitlement: Entitlement, release_date: date) -> MaintenanceEndedError:
    return MaintenanceEndedError(
        f"This version (released {release_date.isoformat()}) is newer than the end of "
        f"maintenance of your {entitlement.product} license "
        f"({_day(entitlement.maintenance_until)}). Renew maintenance or keep using an "
        "earlier version."
    )


def _day(moment: datetime | None) -> str:
    return "an unknown date" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
