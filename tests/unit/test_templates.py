"""Template options: the rules every license template obeys, and the field each broken
rule names (the API answers 422 with that ``field``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from licentia.domain.errors import ValidationError
from licentia.domain.templates import (
    LAST_END_DATE,
    StoredOptions,
    TemplateOptions,
    Validity,
    ValidityKind,
    validity_end,
)
from licentia.server.catalog.services import parse_options

MAX_DAYS = 36_500
days = st.integers(min_value=1, max_value=MAX_DAYS)
not_positive = st.integers(max_value=0)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def refused_field(options: dict[str, Any]) -> str | None:
    """The field named by the refusal of ``options`` (the option's path)."""
    with pytest.raises(ValidationError) as refused:
        parse_options(options)
    assert refused.value.code == "VALIDATION_FAILED"
    return refused.value.field


@st.composite
def valid_options(draw: st.DrawFn) -> dict[str, Any]:
    """Option sets that obey every rule, drawn across the whole option space."""
    lease = draw(days)
    options: dict[str, Any] = {
        "lease_days": lease,
        "refresh_days": draw(st.integers(1, lease)),
        "delivery": draw(st.sampled_from(["device", "cloud", "seat_pool"])),
        "seat_counting": draw(
            st.sampled_from(["per_user", "per_device", "per_process", "exclusive"])
        ),
        "vm_policy": draw(st.sampled_from(["allow", "deny"])),
        "max_devices": draw(st.integers(1, 1000)),
        "validity": draw(validities()),
        "fingerprint_tolerance": draw(tolerances()),
    }
    if options["delivery"] == "seat_pool":
        options["seats"] = draw(st.integers(1, 1000))
        options["max_borrow_days"] = draw(st.none() | days)
    if draw(st.booleans()):
        options["maintenance_days"] = draw(days)
    if draw(st.booleans()):
        options["units"] = draw(st.integers(0, 10**12))
    if draw(st.booleans()):
        options["transfer_limit"] = {
            "returns": draw(st.integers(0, 1000)),
            "period_days": draw(days),
        }
    options["custom_data"] = {"public": draw(st.none() | st.text(max_size=40))}
    return options


def validities() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.just({"kind": "perpetual"}),
        st.builds(
            lambda d: {"kind": "fixed_end", "end_date": d.isoformat()},
            st.dates(max_value=LAST_END_DATE),
        ),
        st.builds(lambda n: {"kind": "days_from_issue", "days": n}, days),
        st.builds(lambda n: {"kind": "days_from_activation", "days": n}, days),
    )


def tolerances() -> st.SearchStrategy[dict[str, Any]]:
    presets = st.sampled_from(["loose", "medium", "strict"]).map(lambda p: {"preset": p})
    k_of_n = st.integers(1, 16).flatmap(
        lambda n: st.integers(1, n).map(lambda k: {"preset": None, "k": k, "n": n})
    )
    return presets | k_of_n


# --- what is accepted ------------------------------------------------------------------


def test_no_options_at_all_is_a_perpetual_device_license_with_a_medium_tolerance() -> None:
    options = parse_options({})
    assert options.delivery == "device"
    assert options.validity.kind is ValidityKind.PERPETUAL
    assert options.fingerprint_tolerance.preset == "medium"
    assert options.refresh_days <= options.lease_days


@given(valid_options())
def test_every_option_set_that_obeys_the_rules_is_accepted(options: dict[str, Any]) -> None:
    parse_options(options)


@given(valid_options())
def test_stored_options_validate_again_to_the_same_options(options: dict[str, Any]) -> None:
    """Licenses re-read the stored JSON of their template; it must mean the same."""
    parsed = parse_options(options)
    assert TemplateOptions.model_validate(parsed.model_dump(mode="json")) == parsed


_TYPED_READS = (
    "delivery",
    "seats",
    "seat_counting",
    "units",
    "lease_days",
    "refresh_days",
    "max_borrow_days",
    "max_devices",
    "seat_lease_seconds",
    "access_token_seconds",
)


@given(valid_options())
def test_stored_options_read_back_as_the_options_that_were_stored(options: dict[str, Any]) -> None:
    parsed = parse_options(options)
    stored = StoredOptions(parsed.model_dump(mode="json"))
    for name in _TYPED_READS:
        assert getattr(stored, name) == getattr(parsed, name), name
    assert stored.vm_allowed == (parsed.vm_policy == "allow")
    assert stored.fingerprint_tolerance == parsed.fingerprint_tolerance.model_dump()
    assert stored.validity == parsed.validity.model_dump(mode="json")


def test_an_option_a_license_does_not_store_reads_as_the_template_default() -> None:
    """Licenses issued before an option existed carry no value for it."""
    defaults, stored = TemplateOptions(), StoredOptions({})
    for name in _TYPED_READS:
        assert getattr(stored, name) == getattr(defaults, name), name
    assert stored.vm_allowed
    assert stored.transfer_limit is None
    assert stored.fingerprint_tolerance["preset"] == "medium"


# --- what is refused, and the field it names -------------------------------------------


@pytest.mark.parametrize(
    "option", ["lease_days", "refresh_days", "maintenance_days", "max_borrow_days"]
)
@given(value=not_positive)
def test_a_period_of_zero_or_fewer_days_is_refused_naming_the_option(
    option: str, value: int
) -> None:
    options: dict[str, Any] = {option: value}
    if option == "max_borrow_days":
        options |= {"delivery": "seat_pool", "seats": 5}
    assert refused_field(options) == f"options.{option}"


@given(value=st.integers(min_value=MAX_DAYS + 1))
def test_a_period_beyond_a_hundred_years_is_refused(value: int) -> None:
    assert refused_field({"lease_days": value, "refresh_days": 1}) == "options.lease_days"


@given(kind=st.sampled_from(["days_from_issue", "days_from_activation"]), value=not_positive)
def test_a_validity_of_zero_or_fewer_days_is_refused(kind: str, value: int) -> None:
    assert refused_field({"validity": {"kind": kind, "days": value}}) == "options.validity.days"


@given(lease=days, refresh=days)
def test_the_refresh_interval_may_not_exceed_the_lease(lease: int, refresh: int) -> None:
    options = {"lease_days": lease, "refresh_days": refresh}
    if refresh <= lease:
        parse_options(options)
    else:
        assert refused_field(options) == "options.refresh_days"


@given(n=st.integers(1, 16), k=st.integers(1, 16))
def test_a_k_of_n_tolerance_needs_k_at_most_n(n: int, k: int) -> None:
    options = {"fingerprint_tolerance": {"preset": None, "k": k, "n": n}}
    if k <= n:
        parse_options(options)
    else:
        assert refused_field(options) == "options.fingerprint_tolerance.k"


@pytest.mark.parametrize(
    ("tolerance", "field"),
    [
        ({"preset": "medium", "k": 2, "n": 3}, "options.fingerprint_tolerance.preset"),
        ({"preset": None}, "options.fingerprint_tolerance.preset"),
        ({"preset": None, "k": 2}, "options.fingerprint_tolerance.n"),
        ({"preset": None, "n": 2}, "options.fingerprint_tolerance.k"),
        ({"preset": "lenient"}, "options.fingerprint_tolerance.preset"),
        ({"preset": None, "k": 0, "n": 3}, "options.fingerprint_tolerance.k"),
    ],
)
def test_a_tolerance_is_either_a_preset_or_k_of_n(tolerance: dict[str, Any], field: str) -> None:
    assert refused_field({"fingerprint_tolerance": tolerance}) == field


def test_a_seat_pool_without_seats_is_refused_naming_seats() -> None:
    assert refused_field({"delivery": "seat_pool"}) == "options.seats"


@given(seats=st.integers(max_value=0))
def test_a_seat_pool_needs_at_least_one_seat(seats: int) -> None:
    assert refused_field({"delivery": "seat_pool", "seats": seats}) == "options.seats"


@given(delivery=st.sampled_from(["device", "cloud"]), borrow=days)
def test_borrowing_applies_only_to_seat_pools(delivery: str, borrow: int) -> None:
    options = {"delivery": delivery, "max_borrow_days": borrow}
    assert refused_field(options) == "options.max_borrow_days"


@pytest.mark.parametrize(
    ("validity", "field"),
    [
        ({"kind": "fixed_end"}, "options.validity.end_date"),
        ({"kind": "perpetual", "end_date": "2030-01-01"}, "options.validity.end_date"),
        ({"kind": "days_from_issue"}, "options.validity.days"),
        ({"kind": "perpetual", "days": 10}, "options.validity.days"),
        ({"kind": "forever"}, "options.validity.kind"),
    ],
)
def test_a_validity_carries_exactly_what_its_kind_needs(
    validity: dict[str, Any], field: str
) -> None:
    assert refused_field({"validity": validity}) == field


@given(key=st.from_regex(r"[a-z_]{1,20}", fullmatch=True))
def test_an_unknown_option_is_refused_naming_it(key: str) -> None:
    assume(key not in TemplateOptions.model_fields)
    assert refused_field({key: 1}) == f"options.{key}"


def test_an_unknown_key_inside_an_option_is_refused_naming_its_path() -> None:
    assert refused_field({"custom_data": {"colour": "red"}}) == "options.custom_data.colour"
    transfer = {"transfer_limit": {"returns": -1, "period_days": 30}}
    assert refused_field(transfer) == "options.transfer_limit.returns"


@pytest.mark.parametrize(
    ("option", "value"),
    [("delivery", "usb"), ("seat_counting", "per_moon"), ("vm_policy", "maybe")],
)
def test_a_choice_outside_its_list_is_refused(option: str, value: str) -> None:
    assert refused_field({option: value}) == f"options.{option}"


# --- validity end ----------------------------------------------------------------------


@given(end=st.dates(min_value=date(2000, 1, 1), max_value=date(2999, 1, 1)), issued=instants)
def test_a_fixed_end_date_is_valid_through_the_whole_day_in_utc(end: date, issued: datetime):
    until = validity_end(Validity(kind=ValidityKind.FIXED_END, end_date=end), issued)
    assert until == datetime.combine(end, time.min, tzinfo=UTC) + timedelta(days=1)


@given(n=days, issued=instants)
def test_days_from_issue_end_that_many_days_after_issue(n: int, issued: datetime) -> None:
    validity = Validity(kind=ValidityKind.DAYS_FROM_ISSUE, days=n)
    assert validity_end(validity, issued) == issued + timedelta(days=n)


@given(n=days, issued=instants)
def test_perpetual_and_from_activation_have_no_end_at_issue(n: int, issued: datetime) -> None:
    assert validity_end(Validity(), issued) is None
    from_activation = Validity(kind=ValidityKind.DAYS_FROM_ACTIVATION, days=n)
    assert validity_end(from_activation, issued) is None
