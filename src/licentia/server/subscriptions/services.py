"""Renewing and cancelling subscriptions, by whoever is paid: a shop, an ERP, or Licentia
itself each period (``renew_due``).

Every use case here locks the license's row first (``get_license(lock=True)``;
SQLite's writers queue anyway), so two renewals of one license run one after the
other and the second sees what the first did: a replay of the same external id finds
the first's row and renews nothing, an automatic renewal finds the period already
paid. The unique keys of ``subscription_renewals`` hold the same rule should a lock
ever be missing. Each renewal is audited as ``subscription.renewed`` (a webhook event
written in the same transaction); its version bump makes devices fetch the license
again at their next sync, and cloud tokens read ``valid_until`` when they are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from licentia.domain.actors import Actor, ActorKind
from licentia.domain.errors import DateOutOfRangeError, ValidationError
from licentia.domain.licenses import LATEST_VALID_UNTIL, LicenseState, check_transition
from licentia.domain.subscriptions import (
    AUTOMATIC_SOURCE,
    Terms,
    already_cancelled,
    check_source,
    clean_external_id,
    not_a_subscription,
)
from licentia.domain.templates import StoredOptions
from licentia.server.audit.services import record
from licentia.server.db.base import utcnow
from licentia.server.licenses.models import License
from licentia.server.licenses.services import (
    get_license,
    license_view,
    state_of,
    subscription_of,
)
from licentia.server.subscriptions.models import SubscriptionRenewal

RENEWALS_JOB = "subscriptions.renew"  # the periodic job that runs renew_due (server/background)
RENEWAL_BATCH = 200  # licenses one automatic round renews at most, in one transaction
# Periods one automatic round renews for one license at most (a server that was down
# for a long time catches up over several rounds rather than in one transaction).
MAX_CATCH_UP = 24


@dataclass(frozen=True)
class RenewalResult:
    """What a renewal request did. ``renewal`` is the period it paid (or, for a
    replay, the one the same request paid before); None when the license was
    already paid that far and nothing changed. ``replayed``: the same source and
    external id renewed before, so nothing changed now."""

    license: License
    renewal: SubscriptionRenewal | None
    replayed: bool


def renew_subscription(
    session: Session,
    actor: Actor,
    license_id: str,
    *,
    source: str,
    external_id: str | None,
    paid_until: datetime | None = None,
    now: datetime | None = None,
) -> RenewalResult:
    """Pay one more period of the license's subscription, or up to ``paid_until``
    (a shop's invoice names the end of the period it paid).

    Idempotent by ``(source, external_id)`` per license: the same request again
    answers the first one's renewal with ``replayed`` and changes nothing, however
    many arrive at once. A ``paid_until`` not later than the license is already paid
    renews nothing (``renewal`` None). A late renewal continues from the end of the
    paid period, not from now.

    Raises NotFoundError (license), ConflictError ``NOT_A_SUBSCRIPTION``,
    ``SUBSCRIPTION_CANCELLED`` or ``ILLEGAL_TRANSITION`` (withdrawn, replaced),
    ValidationError (bad source, external id or ``paid_until``), IdentifierInvalidError,
    DateOutOfRangeError.
    """
    check_source(source)
    external_id = clean_external_id(external_id)
    if paid_until is not None and paid_until.tzinfo is None:
        raise ValidationError("paid_until needs a time zone", field="paid_until")
    license_ = get_license(session, actor, license_id, lock=True)
    now = now or utcnow()
    terms = _terms(license_)
    earlier = _earlier_renewal(session, license_.id, source, external_id)
    if earlier is not None:
        return RenewalResult(license_, earlier, replayed=True)
    if license_.subscription_cancelled_at is not None:
        raise already_cancelled(license_.id)
    check_transition("extend", state_of(license_, now))
    assert license_.paid_until is not None
    if paid_until is not None and paid_until <= license_.paid_until:
        return RenewalResult(license_, None, replayed=False)
    new_end = paid_until or terms.next_end(license_.paid_until, license_.issued_at)
    if new_end > LATEST_VALID_UNTIL - timedelta(days=terms.grace_days):
        raise DateOutOfRangeError(
            f"a subscription cannot be paid beyond {LATEST_VALID_UNTIL.isoformat()}",
            field="paid_until",
        )
    renewal = _renew(session, actor, license_, terms, new_end, source, external_id, now)
    return RenewalResult(license_, renewal, replayed=False)


def cancel_subscription(
    session: Session,
    actor: Actor,
    license_id: str,
    *,
    source: str,
    external_id: str | None = None,
    now: datetime | None = None,
) -> License:
    """Stop renewing: the license runs to the end of its paid period (its grace is
    gone) and is never renewed again. Cancelling a cancelled subscription changes
    nothing (a replay). Raises NotFoundError, ConflictError ``NOT_A_SUBSCRIPTION``,
    ValidationError (bad source or external id)."""
    check_source(source)
    external_id = clean_external_id(external_id)
    license_ = get_license(session, actor, license_id, lock=True)
    now = now or utcnow()
    terms = _terms(license_)
    if license_.subscription_cancelled_at is not None:
        return license_
    assert license_.paid_until is not None and license_.valid_until is not None
    before = subscription_event(license_, now)
    license_.subscription_cancelled_at = now
    license_.renews_at = None
    # Without the grace; an extension the vendor gave on top is kept.
    ends = max(license_.paid_until, _minus_grace(license_.valid_until, terms))
    if ends != license_.valid_until:
        license_.valid_until = ends
        _touch(license_, now)
    after = subscription_event(license_, now)
    after["cancellation"] = {"source": source, "external_id": external_id}
    record(
        session, actor, "subscription.cancelled", "license", license_.id, before=before, after=after
    )
    return license_


def renew_due(session: Session, now: datetime, *, limit: int = RENEWAL_BATCH) -> int:
    """Renew the automatic subscriptions whose renewal is due by ``now``; returns how
    many periods were paid. Idempotent per license and period: rows are claimed with
    SKIP LOCKED (several nodes share the work) and a period already paid is not due
    any more. The caller commits (one transaction per round)."""
    claimed = list(
        session.scalars(
            select(License)
            .where(License.renews_at <= now)
            .order_by(License.renews_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    renewed = 0
    for license_ in claimed:
        renewed += _catch_up(session, license_, now)
    session.flush()
    return renewed


def _catch_up(session: Session, license_: License, now: datetime) -> int:
    terms = Terms.of(StoredOptions(license_.options).subscription)
    if (
        terms is None
        or not terms.automatic
        or license_.subscription_cancelled_at is not None
        or LicenseState(license_.state) in (LicenseState.WITHDRAWN, LicenseState.REPLACED)
    ):
        license_.renews_at = None  # nothing to renew, ever
        return 0
    actor = Actor(ActorKind.SYSTEM, None, license_.vendor_id)
    paid = 0
    while license_.renews_at is not None and license_.renews_at <= now and paid < MAX_CATCH_UP:
        assert license_.paid_until is not None
        end = terms.next_end(license_.paid_until, license_.issued_at)
        _renew(session, actor, license_, terms, end, AUTOMATIC_SOURCE, None, now)
        paid += 1
    return paid


def _renew(
    session: Session,
    actor: Actor,
    license_: License,
    terms: Terms,
    new_end: datetime,
    source: str,
    external_id: str | None,
    now: datetime,
) -> SubscriptionRenewal:
    assert license_.paid_until is not None
    before = subscription_event(license_, now)
    renewal = SubscriptionRenewal(
        vendor_id=license_.vendor_id,
        license_id=license_.id,
        source=source,
        external_id=external_id,
        paid_from=license_.paid_until,
        paid_until=new_end,
        created_at=now,
    )
    session.add(renewal)
    old_end = license_.paid_until
    license_.paid_until = new_end
    valid_until = terms.valid_until(new_end, cancelled=False)
    # A vendor's extension beyond the paid period is kept.
    license_.valid_until = max(valid_until, license_.valid_until or valid_until)
    license_.renews_at = (
        terms.renews_at(old_end, new_end, StoredOptions(license_.options).refresh_days)
        if terms.automatic
        else None
    )
    _touch(license_, now)
    session.flush()
    after = subscription_event(license_, now)
    after["renewal"] = renewal_view(renewal)
    record(
        session, actor, "subscription.renewed", "license", license_.id, before=before, after=after
    )
    return renewal


def _earlier_renewal(
    session: Session, license_id: str, source: str, external_id: str | None
) -> SubscriptionRenewal | None:
    if external_id is None:
        return None
    return session.scalar(
        select(SubscriptionRenewal).where(
            SubscriptionRenewal.license_id == license_id,
            SubscriptionRenewal.source == source,
            SubscriptionRenewal.external_id == external_id,
        )
    )


def renewals(session: Session, actor: Actor, license_id: str) -> list[SubscriptionRenewal]:
    """The license's renewals, newest first. Raises NotFoundError."""
    license_ = get_license(session, actor, license_id)
    return list(
        session.scalars(
            select(SubscriptionRenewal)
            .where(SubscriptionRenewal.license_id == license_.id)
            .order_by(SubscriptionRenewal.paid_until.desc())
        )
    )


def _terms(license_: License) -> Terms:
    terms = Terms.of(StoredOptions(license_.options).subscription)
    if terms is None or license_.paid_until is None:
        raise not_a_subscription(license_.id)
    return terms


def _minus_grace(valid_until: datetime, terms: Terms) -> datetime:
    return valid_until - timedelta(days=terms.grace_days)


def _touch(license_: License, now: datetime) -> None:
    license_.version += 1
    license_.updated_at = now


# --- views ---------------------------------------------------------------------------


def subscription_event(license_: License, now: datetime) -> dict[str, Any]:
    """What the audit log and the ``subscription.*`` webhook events carry."""
    view = subscription_of(license_, now)
    assert view is not None
    return {
        **license_view(license_, now),
        "subscription": {
            "period": view.period,
            "days": view.days,
            "automatic": view.automatic,
            "grace_days": view.grace_days,
            "paid_until": view.paid_until.isoformat(),
            "cancelled_at": view.cancelled_at.isoformat() if view.cancelled_at else None,
            "next_renewal_at": view.next_renewal_at.isoformat() if view.next_renewal_at else None,
            "status": view.status,
        },
    }


def renewal_view(renewal: SubscriptionRenewal) -> dict[str, Any]:
    return {
        "id": renewal.id,
        "source": renewal.source,
        "external_id": renewal.external_id,
        "paid_from": renewal.paid_from.isoformat(),
        "paid_until": renewal.paid_until.isoformat(),
    }
