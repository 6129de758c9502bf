"""Retries: exponential backoff with full jitter, only for failures that may heal."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from licentia.client import (
    NetworkError,
    NoSeatAvailableError,
    RetryPolicy,
    ServerError,
    UnitsExhaustedError,
)
from licentia.client._retry import is_transient, retry_call

policies = st.builds(
    RetryPolicy,
    attempts=st.integers(1, 12),
    base=st.floats(0.01, 2.0),
    cap=st.floats(2.0, 60.0),
    budget=st.floats(0.0, 120.0),
)


@given(policy=policies, seed=st.integers())
def test_each_delay_is_drawn_from_zero_to_the_capped_exponential_and_fits_the_budget(
    policy: RetryPolicy, seed: int
) -> None:
    delays = list(policy.delays(random.Random(seed)))

    assert len(delays) <= policy.attempts - 1
    assert sum(delays) <= policy.budget
    for attempt, delay in enumerate(delays):
        assert 0 <= delay <= min(policy.cap, policy.base * 2**attempt)


def test_a_team_retrying_after_an_outage_spreads_out_instead_of_retrying_in_lockstep() -> None:
    policy = RetryPolicy(attempts=5, base=1.0, cap=30.0, budget=1000.0)
    clients = [random.Random(n) for n in range(200)]

    third_retry = [list(policy.delays(rng))[3] for rng in clients]

    buckets = {int(delay) for delay in third_retry}  # one-second buckets of the 0-8 s window
    assert len(buckets) == 8
    assert max(third_retry) - min(third_retry) > 6


def test_transient_failures_are_retried_until_the_call_succeeds() -> None:
    answers: list[Exception | str] = [NetworkError(), ServerError("busy", status=503), "done"]
    slept: list[float] = []

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = retry_call(call, RetryPolicy(attempts=3), sleep=slept.append)

    assert result == "done" and len(slept) == 2


@pytest.mark.parametrize(
    "refusal",
    [
        NoSeatAvailableError(),
        UnitsExhaustedError(),
        ServerError("bad request", status=422, server_code="VALIDATION_FAILED"),
    ],
)
def test_a_refusal_is_an_answer_and_is_raised_at_once(refusal: Exception) -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise refusal

    with pytest.raises(type(refusal)):
        retry_call(call, RetryPolicy(attempts=5), sleep=lambda _: None)
    assert calls == [1] and not is_transient(refusal)


def test_the_last_failure_is_raised_when_the_attempts_run_out() -> None:
    calls: list[int] = []

    def call() -> None:
        calls.append(1)
        raise NetworkError("still down")

    with pytest.raises(NetworkError, match="still down"):
        retry_call(call, RetryPolicy(attempts=4), sleep=lambda _: None)
    assert len(calls) == 4
