"""The license state machine (licentia.domain.licenses) as a specification.

The table below is the rule a vendor relies on; the domain must agree with it for
every action from every state, and a license driven through any sequence of actions
and clock ticks must keep the promises listed in ``LicenseLifecycle``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from licentia.domain.errors import IllegalTransitionError, ValidationError
from licentia.domain.licenses import (
    LicenseState,
    check_transition,
    effective_state,
    extended_until,
    target_state,
)

S = LicenseState
LIVE = {S.AVAILABLE, S.ACTIVATED, S.RETURNED}
FINAL = {S.WITHDRAWN, S.REPLACED}

# From which state (as the user sees it) each action is allowed.
ALLOWED: dict[str, set[LicenseState]] = {
    "activate": {S.AVAILABLE, S.RETURNED},
    "return": {S.ACTIVATED},
    "suspend": LIVE | {S.EXPIRED},
    "resume": {S.SUSPENDED},
    "extend": LIVE | {S.EXPIRED, S.SUSPENDED},
    "withdraw": LIVE | {S.EXPIRED, S.SUSPENDED},
    "replace": LIVE | {S.EXPIRED, S.SUSPENDED},
}
# Where an allowed action leaves the stored state (resume: see the lifecycle below).
MOVES_TO = {
    "activate": S.ACTIVATED,
    "return": S.RETURNED,
    "suspend": S.SUSPENDED,
    "withdraw": S.WITHDRAWN,
    "replace": S.REPLACED,
}
NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("action", "state"), list(product(ALLOWED, S)))
def test_an_action_is_allowed_exactly_from_the_states_in_the_table(action, state):
    if state in ALLOWED[action]:
        check_transition(action, state)
        return
    with pytest.raises(IllegalTransitionError) as refused:
        check_transition(action, state)
    assert refused.value.code == "ILLEGAL_TRANSITION"
    assert refused.value.details == {"action": action, "current_state": state.value}


def test_withdrawn_and_replaced_licenses_allow_no_action_at_all():
    for action, state in product(ALLOWED, FINAL):
        with pytest.raises(IllegalTransitionError):
            check_transition(action, state)


@pytest.mark.parametrize("before", sorted(LIVE))
def test_resume_returns_to_the_state_the_license_had_before_suspend(before):
    assert target_state("resume", S.SUSPENDED, before) is before


@given(st.sampled_from(sorted(S)), st.one_of(st.none(), st.integers(-1000, 1000)))
def test_only_a_live_license_past_its_end_is_expired(stored, offset_days):
    valid_until = None if offset_days is None else NOW + timedelta(days=offset_days)
    shown = effective_state(stored, valid_until, NOW)
    past_end = valid_until is not None and valid_until <= NOW
    assert shown is (S.EXPIRED if stored in LIVE and past_end else stored)


# --- extensions -------------------------------------------------------------------------

ends = st.one_of(st.none(), st.integers(-3650, 3650).map(lambda d: NOW + timedelta(hours=d)))


@given(ends, st.integers(1, 3650))
def test_extending_by_days_counts_from_the_later_of_the_old_end_and_now(valid_until, days):
    new_end = extended_until(valid_until, until=None, days=days, now=NOW)
    base = valid_until if valid_until is not None and valid_until > NOW else NOW
    assert new_end == base + timedelta(days=days)


@given(ends, st.integers(-3650, 3650).map(lambda d: NOW + timedelta(hours=d)))
def test_extending_to_a_date_accepts_only_a_future_date_that_does_not_shorten(valid_until, until):
    shortens = valid_until is not None and until < valid_until
    if until <= NOW or shortens:
        with pytest.raises(ValidationError) as refused:
            extended_until(valid_until, until=until, days=None, now=NOW)
        assert refused.value.field == "until"
    else:
        assert extended_until(valid_until, until=until, days=None, now=NOW) == until


@pytest.mark.parametrize(
    ("until", "days", "field"),
    [(None, None, "until"), (NOW + timedelta(days=1), 5, "until"), (None, 0, "days")],
)
def test_an_extension_needs_exactly_one_positive_amount(until, days, field):
    with pytest.raises(ValidationError) as refused:
        extended_until(NOW, until=until, days=days, now=NOW)
    assert refused.value.field == field


# --- any sequence of actions ------------------------------------------------------------


class LicenseLifecycle(RuleBasedStateMachine):
    """One license driven by vendor actions, activations and the passing of time.

    The bookkeeping in ``apply`` is what the license service does with the domain's
    answers; the invariants are the promises a vendor can rely on.
    """

    @initialize(lifetime_days=st.one_of(st.none(), st.integers(-30, 30)))
    def issue(self, lifetime_days: int | None) -> None:
        self.now = NOW
        self.stored = S.AVAILABLE
        self.before_suspend: LicenseState | None = None
        self.valid_until = None if lifetime_days is None else NOW + timedelta(days=lifetime_days)
        self.ended: LicenseState | None = None

    @property
    def shown(self) -> LicenseState:
        return effective_state(self.stored, self.valid_until, self.now)

    @rule(action=st.sampled_from([*sorted(MOVES_TO), "resume"]))
    def act(self, action: str) -> None:
        shown, stored, before_suspend = self.shown, self.stored, self.before_suspend
        if shown not in ALLOWED[action]:
            with pytest.raises(IllegalTransitionError) as refused:
                check_transition(action, shown)
            assert refused.value.details["current_state"] == shown.value
            return
        check_transition(action, shown)
        self.stored = target_state(action, stored, before_suspend)
        self.before_suspend = stored if action == "suspend" else None
        if action == "resume":
            assert self.stored is before_suspend
        else:
            assert self.stored is MOVES_TO[action]
        if self.stored in FINAL:
            self.ended = self.stored

    @precondition(lambda self: self.valid_until is not None)
    @rule(days=st.integers(1, 400))
    def extend(self, days: int) -> None:
        if self.shown not in ALLOWED["extend"]:
            with pytest.raises(IllegalTransitionError):
                check_transition("extend", self.shown)
            return
        check_transition("extend", self.shown)
        old_end = self.valid_until
        assert old_end is not None
        self.valid_until = extended_until(old_end, until=None, days=days, now=self.now)
        assert self.valid_until > self.now
        assert self.valid_until >= old_end
        assert self.shown is not S.EXPIRED  # an extension revives an expired license

    @rule(hours=st.integers(1, 24 * 60))
    def time_passes(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @invariant()
    def expired_means_live_and_past_the_end(self) -> None:
        past_end = self.valid_until is not None and self.valid_until <= self.now
        assert (self.shown is S.EXPIRED) == (self.stored in LIVE and past_end)

    @invariant()
    def withdrawn_and_replaced_are_final(self) -> None:
        if self.ended is not None:
            assert self.stored is self.ended


LicenseLifecycle.TestCase.settings = settings(max_examples=300, stateful_step_count=30)
test_any_sequence_of_actions_keeps_the_state_machines_promises = LicenseLifecycle.TestCase
