"""Subscriptions: a license that is paid for one period at a time.

A subscription template (option ``subscription``) makes every license issued from it
paid for its first period from issue. Each renewal pays one more period (or up to a
date the shop names) and moves the license's validity with it; nothing else about
the license changes, so a device learns of a renewal the way it learns of an
extension (the license's version grows) and a cloud token reads the new end at once.

    paid_until ──────────────┐ valid_until = paid_until + grace_days (while running)
                             └ valid_until = paid_until              (once cancelled)

The grace period is there *before* it is needed: a payment that fails (a renewal
that does not arrive by ``paid_until``) leaves the license valid for ``grace_days``
more, also on devices that are offline, and a renewal arriving late still continues
from ``paid_until``, not from the day it arrived. A cancelled subscription runs to
the end of its paid period and is never renewed again.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from licentia.domain.errors import ConflictError, DateOutOfRangeError, ValidationError
from licentia.domain.identifiers import clean_identifier
from licentia.domain.licenses import LATEST_VALID_UNTIL

AUTOMATIC_SOURCE = "automatic"  # the source of the renewals Licentia makes itself
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")
MAX_EXTERNAL_ID = 200


class SubscriptionPeriod(StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"
    DAYS = "days"


class SubscriptionStatus(StrEnum):
    """What a user sees of a subscription at a moment."""

    ACTIVE = "active"  # paid for the current period
    GRACE = "grace"  # the paid period is over, the renewal is late: valid for grace days
    CANCELLED = "cancelled"  # runs to the end of its paid period, then ends
    ENDED = "ended"  # no longer valid (cancelled and over, or past its grace)


@dataclass(frozen=True)
class Terms:
    """A subscription's terms as the template gave them (``options.subscription``)."""

    period: SubscriptionPeriod
    days: int | None
    automatic: bool
    grace_days: int

    @classmethod
    def of(cls, raw: dict[str, object] | None) -> Terms | None:
        """The terms in stored options (None: the license is no subscription)."""
        if not raw:
            return None
        days = raw.get("days")
        grace = raw.get("grace_days")
        return cls(
            period=SubscriptionPeriod(str(raw["period"])),
            days=int(str(days)) if days is not None else None,
            automatic=bool(raw.get("automatic")),
            grace_days=int(str(grace)) if grace is not None else 0,
        )

    def next_end(self, paid_until: datetime, anchor: datetime) -> datetime:
        """The end of the period that follows one ending at ``paid_until``. Calendar
        periods keep the day of the month of ``anchor`` (the subscription's start),
        or the month's last day when it is shorter: Jan 31, Feb 28, Mar 31.
        Raises DateOutOfRangeError beyond LATEST_VALID_UNTIL."""
        if self.period is SubscriptionPeriod.DAYS:
            assert self.days is not None
            end = paid_until + timedelta(days=self.days)
        else:
            months = 1 if self.period is SubscriptionPeriod.MONTHLY else 12
            end = _add_months(paid_until, months, anchor.day)
        if end > LATEST_VALID_UNTIL - timedelta(days=self.grace_days):
            raise DateOutOfRangeError(
                f"a subscription cannot be paid beyond {LATEST_VALID_UNTIL.isoformat()}",
                field="paid_until",
            )
        return end

    def valid_until(self, paid_until: datetime, *, cancelled: bool) -> datetime:
        """The license's validity end for a subscription paid until ``paid_until``."""
        return paid_until if cancelled else paid_until + timedelta(days=self.grace_days)

    def renews_at(self, paid_from: datetime, paid_until: datetime, refresh_days: int) -> datetime:
        """When an automatic renewal of the period from ``paid_from`` to ``paid_until``
        falls due: ``refresh_days`` before its end, for a device syncs at least that
        often, so every device that keeps its refresh interval holds the new end before
        the old one passes; but never in the period's first half (a period shorter
        than the refresh interval is not paid twice ahead)."""
        return max(
            paid_until - timedelta(days=refresh_days), paid_from + (paid_until - paid_from) / 2
        )

    def first_period(self, issued_at: datetime, refresh_days: int) -> FirstPeriod:
        """A new license's subscription: paid for one period from its issue."""
        paid_until = self.next_end(issued_at, issued_at)
        return FirstPeriod(
            paid_until=paid_until,
            valid_until=self.valid_until(paid_until, cancelled=False),
            renews_at=self.renews_at(issued_at, paid_until, refresh_days)
            if self.automatic
            else None,
        )


@dataclass(frozen=True)
class FirstPeriod:
    paid_until: datetime
    valid_until: datetime
    renews_at: datetime | None


def _add_months(moment: datetime, months: int, day: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(day, last))


def status(
    paid_until: datetime, valid_until: datetime, cancelled: bool, now: datetime
) -> SubscriptionStatus:
    if valid_until <= now:
        return SubscriptionStatus.ENDED
    if cancelled:
        return SubscriptionStatus.CANCELLED
    return SubscriptionStatus.GRACE if paid_until <= now else SubscriptionStatus.ACTIVE


@dataclass(frozen=True)
class SubscriptionView:
    """A license's subscription as the API, the console and the portal show it."""

    period: str
    days: int | None
    automatic: bool
    grace_days: int
    paid_until: datetime
    cancelled_at: datetime | None
    next_renewal_at: datetime | None
    status: str


def describe(
    terms: Terms,
    *,
    paid_until: datetime,
    valid_until: datetime | None,
    cancelled_at: datetime | None,
    renews_at: datetime | None,
    live: bool,
    now: datetime,
) -> SubscriptionView:
    """The subscription of a license with these columns (``live``: not withdrawn or
    replaced, so a renewal may still come)."""
    cancelled = cancelled_at is not None
    ends = valid_until or terms.valid_until(paid_until, cancelled=cancelled)
    expected = renews_at if terms.automatic and renews_at else paid_until
    return SubscriptionView(
        period=terms.period.value,
        days=terms.days,
        automatic=terms.automatic,
        grace_days=terms.grace_days,
        paid_until=paid_until,
        cancelled_at=cancelled_at,
        next_renewal_at=expected if live and not cancelled else None,
        status=status(paid_until, ends, cancelled, now).value,
    )


def check_source(source: str) -> None:
    """A renewal's source is a short lower-case code (``api``, ``stripe``…)."""
    if not _SOURCE.match(source):
        raise ValidationError(
            "source must be 1-32 lower-case letters, digits, '.', '_' or '-'", field="source"
        )


def clean_external_id(external_id: str | None) -> str | None:
    """The renewing system's id of a renewal or cancellation, in NFC (an identifier
    like an external order id: ``domain/identifiers.py``). Raises ValidationError for
    one that is empty or too long, IdentifierInvalidError for an invisible character."""
    if external_id is None:
        return None
    if not 0 < len(external_id) <= MAX_EXTERNAL_ID:
        raise ValidationError(
            f"external_id must be 1-{MAX_EXTERNAL_ID} characters", field="external_id"
        )
    return clean_identifier(external_id, field="external_id")


def not_a_subscription(license_id: str) -> ConflictError:
    return ConflictError(f"license {license_id} is not a subscription", code="NOT_A_SUBSCRIPTION")


def already_cancelled(license_id: str) -> ConflictError:
    return ConflictError(
        f"the subscription of license {license_id} is cancelled and is not renewed",
        code="SUBSCRIPTION_CANCELLED",
    )
