"""A subscription's periods: calendar months keep the day the subscription began,
a renewal of an automatic one falls due before the end, and the grace follows the
paid end until the subscription is cancelled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from licentia.domain.errors import DateOutOfRangeError
from licentia.domain.subscriptions import SubscriptionStatus, Terms, status
from licentia.domain.templates import OptionRuleError, TemplateOptions

START = datetime(2027, 1, 31, 9, 30, tzinfo=UTC)


def terms(**raw: object) -> Terms:
    options = TemplateOptions.model_validate({"subscription": raw})
    assert options.subscription is not None
    found = Terms.of(options.subscription.model_dump(mode="json"))
    assert found is not None
    return found


def test_monthly_periods_keep_the_day_they_began_or_the_months_last_day():
    monthly = terms(period="monthly")
    ends = [START]
    for _ in range(3):
        ends.append(monthly.next_end(ends[-1], START))
    assert [end.date().isoformat() for end in ends[1:]] == [
        "2027-02-28",
        "2027-03-31",
        "2027-04-30",
    ]
    assert ends[-1].time() == START.time()


def test_a_yearly_period_from_a_leap_day_ends_on_the_last_of_february():
    leap = datetime(2028, 2, 29, tzinfo=UTC)
    assert terms(period="yearly").next_end(leap, leap) == datetime(2029, 2, 28, tzinfo=UTC)


def test_a_period_of_days_is_that_many_days():
    assert terms(period="days", days=14).next_end(START, START) == START + timedelta(days=14)


def test_no_period_ends_beyond_the_supported_range():
    far = datetime(2999, 12, 20, tzinfo=UTC)
    with pytest.raises(DateOutOfRangeError):
        terms(period="monthly").next_end(far, far)


def test_an_automatic_renewal_falls_due_before_the_end_but_not_in_the_first_half():
    first = terms(period="days", days=30, automatic=True).first_period(START, refresh_days=7)
    short = terms(period="days", days=4, automatic=True).first_period(START, refresh_days=7)
    external = terms(period="days", days=30).first_period(START, refresh_days=7)
    assert first.renews_at == first.paid_until - timedelta(days=7)
    assert short.renews_at == START + timedelta(days=2)
    assert external.renews_at is None


def test_the_grace_follows_the_paid_end_until_cancelled():
    graced = terms(period="monthly", grace_days=10)
    paid = START + timedelta(days=28)
    assert graced.valid_until(paid, cancelled=False) == paid + timedelta(days=10)
    assert graced.valid_until(paid, cancelled=True) == paid


def test_the_status_a_user_sees():
    paid, valid = START, START + timedelta(days=5)
    assert status(paid, valid, False, START - timedelta(days=1)) is SubscriptionStatus.ACTIVE
    assert status(paid, valid, False, START + timedelta(days=1)) is SubscriptionStatus.GRACE
    assert status(paid, paid, True, START - timedelta(days=1)) is SubscriptionStatus.CANCELLED
    assert status(paid, valid, False, valid) is SubscriptionStatus.ENDED


@pytest.mark.parametrize(
    ("raw", "field"),
    [({"period": "days"}, "days"), ({"period": "yearly", "days": 3}, "days")],
)
def test_days_go_with_a_period_of_days_only(raw, field):
    with pytest.raises(ValueError) as refused:
        TemplateOptions.model_validate({"subscription": raw})
    rule = refused.value.errors()[0]["ctx"]["error"]  # type: ignore[attr-defined]
    assert isinstance(rule, OptionRuleError) and rule.field == field
