"""Issuing licenses, the vendor's actions on them, and their signed documents."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row, Select, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor
from licentia.domain.errors import ConflictError, NotFoundError
from licentia.domain.filters import one_of
from licentia.domain.ids import new_id
from licentia.domain.licenses import (
    FINAL,
    LicenseState,
    check_transition,
    effective_state,
    extended_until,
    target_state,
)
from licentia.domain.subscriptions import SubscriptionView, Terms, describe
from licentia.domain.templates import StoredOptions, TemplateOptions, validity_end
from licentia.formats.document_types import LICENSE_TYP
from licentia.server.audit.services import record
from licentia.server.catalog.models import Template
from licentia.server.catalog.services import TemplateRef, template_by_sku
from licentia.server.db.base import utcnow
from licentia.server.keys.master import MasterKey
from licentia.server.keys.services import current_signer
from licentia.server.licenses.models import ActivationDay, CustomerLicenseCount, License
from licentia.server.tenancy.models import Vendor


def issue_licenses(
    session: Session,
    actor: Actor,
    template: Template,
    *,
    ticket_id: str,
    order_line_id: str | None,
    customer_id: str | None,
    quantity: int,
) -> list[License]:
    """``quantity`` new available licenses of ``template`` on the ticket, its options frozen."""
    now = utcnow()
    ref = TemplateRef(
        id=template.id,
        vendor_id=template.vendor_id,
        sku=template.sku,
        product_code=template.product.code,
        features=template.features,
        options=template.options,
    )
    rows = new_license_rows(
        ref,
        now,
        ticket_id=ticket_id,
        order_line_id=order_line_id,
        customer_id=customer_id,
        quantity=quantity,
    )
    licenses = [License(**row) for row in rows]
    session.add_all(licenses)
    session.flush()
    count_issued(session, rows)
    for license_ in licenses:
        record(
            session,
            actor,
            "license.issued",
            "license",
            license_.id,
            after=license_view(license_, now),
        )
    return licenses


def new_license_rows(
    template: TemplateRef,
    now: datetime,
    *,
    ticket_id: str,
    order_line_id: str | None,
    customer_id: str | None,
    quantity: int,
) -> list[dict[str, Any]]:
    """Column values of ``quantity`` fresh available licenses, ids included, for a
    caller that writes them itself (orders, with Core INSERTs); it then calls
    ``record_issued`` so that each is audited as ``issue_licenses`` would."""
    options = TemplateOptions.model_validate(template.options)
    shared = {
        "vendor_id": template.vendor_id,
        "ticket_id": ticket_id,
        "template_id": template.id,
        "order_line_id": order_line_id,
        "customer_id": customer_id,
        "product_code": template.product_code,
        "delivery": options.delivery.value,
        "state": LicenseState.AVAILABLE.value,
        "issued_at": now,
        "valid_until": validity_end(options.validity, now),
        "maintenance_until": now + timedelta(days=options.maintenance_days)
        if options.maintenance_days
        else None,
        "version": 1,
        "updated_at": now,
    }
    shared.update(_subscription_columns(options, now))
    return [
        {
            **shared,
            "id": new_id(),
            "features": list(template.features),
            "options": dict(template.options),
        }
        for _ in range(quantity)
    ]


def _subscription_columns(options: TemplateOptions, now: datetime) -> dict[str, Any]:
    """A subscription's first period (paid from issue), or no subscription."""
    terms = Terms.of(options.subscription.model_dump(mode="json") if options.subscription else None)
    if terms is None:
        return {"paid_until": None, "renews_at": None}
    first = terms.first_period(now, options.refresh_days)
    return {
        "paid_until": first.paid_until,
        "renews_at": first.renews_at,
        "valid_until": first.valid_until,
    }


def count_issued(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add licenses just written from ``new_license_rows`` to their customers'
    ``CustomerLicenseCount`` (one upsert per customer; licenses without a customer
    are not counted)."""
    per_customer = Counter(
        (row["vendor_id"], row["customer_id"]) for row in rows if row["customer_id"]
    )
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for (vendor_id, customer_id), added in per_customer.items():
        statement = upsert(CustomerLicenseCount).values(
            customer_id=customer_id, vendor_id=vendor_id, licenses=added
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[CustomerLicenseCount.customer_id],
                set_={"licenses": CustomerLicenseCount.licenses + added},
            )
        )


def count_activations(session: Session, vendor_id: str, now: datetime, added: int = 1) -> None:
    """Add ``added`` activations to the vendor's ``ActivationDay`` of ``now``'s UTC day,
    in the caller's transaction: every place that audits ``license.activated`` calls
    this for the same licenses, so the kept count and the audit log agree (but for an
    activation whose transaction straddles midnight: counted on the day it began, audited
    on the day it committed)."""
    if added <= 0:
        return
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = upsert(ActivationDay).values(
        vendor_id=vendor_id, day=now.astimezone(UTC).date(), activations=added
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[ActivationDay.vendor_id, ActivationDay.day],
            set_={"activations": ActivationDay.activations + added},
        )
    )


def record_issued(
    session: Session, actor: Actor, rows: list[dict[str, Any]], now: datetime
) -> None:
    """Audit ``license.issued`` for licenses written from ``new_license_rows``."""
    for row in rows:
        record(session, actor, "license.issued", "license", row["id"], after=_issued_view(row, now))


def _issued_view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """``license_view`` of a license just issued from ``row``."""
    state = effective_state(LicenseState(row["state"]), row["valid_until"], now)
    return {
        "state": state.value,
        "valid_until": _iso(row["valid_until"]),
        "maintenance_until": _iso(row["maintenance_until"]),
        "features": list(row["features"]),
        "version": row["version"],
        "replaced_by_id": None,
        "device_id": None,
    }


class Stateful(Protocol):
    """What the effective state is computed from: a License, or a row of its columns."""

    @property
    def state(self) -> str: ...
    @property
    def valid_until(self) -> datetime | None: ...


class Documented(Stateful, Protocol):
    """What a license document is made from: a License, or a value with its columns."""

    @property
    def id(self) -> str: ...
    @property
    def issued_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...
    @property
    def product_code(self) -> str: ...
    @property
    def features(self) -> list[str]: ...
    @property
    def options(self) -> dict[str, Any]: ...
    @property
    def maintenance_until(self) -> datetime | None: ...


def state_of(license_: Stateful, now: datetime) -> LicenseState:
    return effective_state(LicenseState(license_.state), license_.valid_until, now)


def subscription_of(license_: Any, now: datetime) -> SubscriptionView | None:
    """The subscription of a License (or a row of its columns); None if it has none."""
    return subscription_in(StoredOptions(license_.options).subscription, license_, now)


def subscription_in(
    stored_terms: Mapping[str, Any] | None, license_: Any, now: datetime
) -> SubscriptionView | None:
    """The subscription of a license (or a row of its columns) whose stored options
    hold ``stored_terms`` under ``subscription``: for read models that select that
    part of the options only (the whole options are a license's largest column)."""
    terms = Terms.of(None if stored_terms is None else dict(stored_terms))
    if terms is None or license_.paid_until is None:
        return None
    return describe(
        terms,
        paid_until=license_.paid_until,
        valid_until=license_.valid_until,
        cancelled_at=license_.subscription_cancelled_at,
        renews_at=license_.renews_at,
        live=LicenseState(license_.state) not in FINAL,
        now=now,
    )


def license_view(license_: License, now: datetime) -> dict[str, Any]:
    """The license as the audit log and the API show it."""
    return {
        "state": state_of(license_, now).value,
        "valid_until": _iso(license_.valid_until),
        "maintenance_until": _iso(license_.maintenance_until),
        "features": list(license_.features),
        "version": license_.version,
        "replaced_by_id": license_.replaced_by_id,
        "device_id": license_.device_id,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# Built once, like the order path's statements: the hottest read of the API.
LicenseRow = Row[Any]  # a license's columns, read without building an ORM object
LICENSE_ROW = select(License.__table__).where(
    License.__table__.c.id == bindparam("license_id"),
    License.__table__.c.vendor_id == bindparam("vendor_id"),
)


def get_license(session: Session, actor: Actor, license_id: str, *, lock: bool = False) -> License:
    query = select(License).where(License.id == license_id, License.vendor_id == _vendor(actor))
    license_ = session.scalar(query.with_for_update() if lock else query)
    if license_ is None:
        raise NotFoundError("license", license_id)
    return license_


@dataclass(frozen=True)
class LicenseFilter:
    ticket_id: str | None = None
    customer_id: str | None = None
    state: str | None = None
    product_code: str | None = None
    device_id: str | None = None


def license_list_query(
    actor: Actor, filters: LicenseFilter
) -> Select[str, str, str, datetime | None, str | None, str | None]:
    """``licenses_query`` reading the columns a list of licenses shows (id, product
    code, state, valid until, customer and device), not whole licenses: their options
    and features are JSON documents to decode, for nothing."""
    return licenses_query(actor, filters).with_only_columns(
        License.id,
        License.product_code,
        License.state,
        License.valid_until,
        License.customer_id,
        License.device_id,
    )


def licenses_query(actor: Actor, filters: LicenseFilter) -> Select[License]:
    query = select(License).where(License.vendor_id == _vendor(actor))
    for column, value in (
        (License.ticket_id, filters.ticket_id),
        (License.customer_id, filters.customer_id),
        (License.product_code, filters.product_code),
        (License.device_id, filters.device_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if filters.state is not None:
        one_of(filters.state, (state.value for state in LicenseState), field="state")
        # "expired" is derived, so filter on the stored state and the clock.
        now = utcnow()
        if filters.state == LicenseState.EXPIRED.value:
            query = query.where(
                License.valid_until <= now,
                License.state.in_(
                    [LicenseState.AVAILABLE, LicenseState.ACTIVATED, LicenseState.RETURNED]
                ),
            )
        else:
            query = query.where(License.state == filters.state)
            if filters.state in {
                LicenseState.AVAILABLE,
                LicenseState.ACTIVATED,
                LicenseState.RETURNED,
            }:
                query = query.where((License.valid_until.is_(None)) | (License.valid_until > now))
    return query


# --- vendor actions --------------------------------------------------------------------


def change_state(session: Session, actor: Actor, license_id: str, action: str) -> License:
    """Apply ``suspend``, ``resume`` or ``withdraw``.

    Raises IllegalTransitionError (naming the current state) if not allowed now.
    """
    license_ = get_license(session, actor, license_id, lock=True)
    now = utcnow()
    current = state_of(license_, now)
    check_transition(action, current)
    before = license_view(license_, now)
    new_state = target_state(action, LicenseState(license_.state), _before_suspend(license_))
    license_.state_before_suspend = license_.state if action == "suspend" else None
    license_.state = new_state.value
    _touch(license_, now)
    record(
        session,
        actor,
        f"license.{_past(action)}",
        "license",
        license_.id,
        before=before,
        after=license_view(license_, now),
    )
    return license_


def extend_license(
    session: Session, actor: Actor, license_id: str, *, until: datetime | None, days: int | None
) -> License:
    """Move the validity end to ``until`` or by ``days``.

    Raises ConflictError (``NOT_TIME_LIMITED``) for a license that never expires,
    IllegalTransitionError for a withdrawn or replaced one, ValidationError for bad input.
    """
    license_ = get_license(session, actor, license_id, lock=True)
    now = utcnow()
    check_transition("extend", state_of(license_, now))
    if license_.valid_until is None:
        raise ConflictError("this license has no end date to extend", code="NOT_TIME_LIMITED")
    before = license_view(license_, now)
    license_.valid_until = extended_until(license_.valid_until, until=until, days=days, now=now)
    _touch(license_, now)
    record(
        session,
        actor,
        "license.extended",
        "license",
        license_.id,
        before=before,
        after=license_view(license_, now),
    )
    return license_


def replace_license(session: Session, actor: Actor, license_id: str, *, sku: str | None) -> License:
    """Retire the license as ``replaced`` and issue its successor on the same ticket,
    from the template with ``sku`` (an upgrade) or from the same template. Returns the
    successor. Raises NotFoundError (license, or template ``sku``), ConflictError
    ``ILLEGAL_TRANSITION``."""
    template = None
    if sku is not None:
        template = template_by_sku(session, _vendor(actor), sku)
        if template is None:
            raise NotFoundError("template", sku)
    license_ = get_license(session, actor, license_id, lock=True)
    now = utcnow()
    check_transition("replace", state_of(license_, now))
    source = template or session.get_one(Template, license_.template_id)
    (successor,) = issue_licenses(
        session,
        actor,
        source,
        ticket_id=license_.ticket_id,
        order_line_id=license_.order_line_id,
        customer_id=license_.customer_id,
        quantity=1,
    )
    if license_.device_id is not None and license_.state == LicenseState.ACTIVATED:
        # The successor takes the old one's place on the device at its next sync.
        successor.device_id, successor.activated_at = license_.device_id, now
        successor.state = LicenseState.ACTIVATED.value
    before = license_view(license_, now)
    license_.state, license_.replaced_by_id = LicenseState.REPLACED.value, successor.id
    _touch(license_, now)
    record(
        session,
        actor,
        "license.replaced",
        "license",
        license_.id,
        before=before,
        after=license_view(license_, now),
    )
    return successor


def _before_suspend(license_: License) -> LicenseState | None:
    return LicenseState(license_.state_before_suspend) if license_.state_before_suspend else None


def _touch(license_: License, now: datetime) -> None:
    license_.version += 1
    license_.updated_at = now


def _past(action: str) -> str:
    return {"suspend": "suspended", "resume": "resumed", "withdraw": "withdrawn"}[action]


# --- signed documents ------------------------------------------------------------------


def license_claims(license_: Documented, *, issuer: str, now: datetime) -> dict[str, Any]:
    """The claims of a license document (docs/formats.md, "License document")."""
    state = state_of(license_, now)
    if state in FINAL or state is LicenseState.SUSPENDED:
        raise ConflictError(
            f"a {state.value} license has no document",
            code="LICENSE_NOT_USABLE",
            current_state=state.value,
        )
    options = dict(license_.options)
    custom = options.pop("custom_data", {}) or {}
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": license_.id,
        "iat": int(now.timestamp()),
        "nbf": int(license_.issued_at.timestamp()),
        "jti": secrets.token_urlsafe(12),
        "ver": license_.version,
        "state": state.value,
        "product": license_.product_code,
        "features": list(license_.features),
        "maintenance_until": _epoch(license_.maintenance_until),
        "options": options,
        "public_data": custom.get("public"),
        "protected_data": custom.get("protected"),
    }
    if license_.valid_until is not None:
        claims["exp"] = int(license_.valid_until.timestamp())
    return claims


def render_document(session: Session, actor: Actor, master: MasterKey, license_id: str) -> str:
    """The license as a compact JWS signed with the vendor's current key. Raises
    NotFoundError, ConflictError ``NO_SIGNING_KEY`` or ``LICENSE_NOT_USABLE``."""
    vendor = session.get_one(Vendor, _vendor(actor))
    signer = current_signer(session, vendor.id, master)
    license_ = get_license(session, actor, license_id)
    return signer.sign(license_claims(license_, issuer=vendor.slug, now=utcnow()), typ=LICENSE_TYP)


def _epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def _vendor(actor: Actor) -> str:
    assert actor.vendor_id is not None, "license calls need a vendor-scoped actor"
    return actor.vendor_id
