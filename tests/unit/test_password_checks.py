"""Password checks: bounded, and at a lower priority than serving."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from licentia.domain.errors import ServerBusyError
from licentia.server.tenancy.passwords import HASHING_NICENESS, PasswordChecks, hash_password


def test_a_check_answers_as_the_password_says() -> None:
    checks = PasswordChecks(2)
    stored = hash_password("correct horse battery")
    assert checks.matches(stored, "correct horse battery")
    assert not checks.matches(stored, "wrong horse battery")
    assert not checks.matches(None, "correct horse battery")  # an unknown user


def test_a_check_beyond_the_limit_is_refused_at_once() -> None:
    checks = PasswordChecks(1)
    with checks.slot(), pytest.raises(ServerBusyError) as refused:
        checks.matches(None, "anything at all")
    assert refused.value.code == "LOGINS_BUSY"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priority is Linux's")
def test_hashes_run_below_the_priority_of_the_threads_that_serve() -> None:
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    if mine >= HASHING_NICENESS:
        pytest.skip(f"the tests already run at niceness {mine}")
    checks = PasswordChecks(2)
    theirs = checks.run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert theirs == HASHING_NICENESS
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # ours untouched
