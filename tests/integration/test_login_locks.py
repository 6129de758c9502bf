"""An account's login backoff: locked at its fifth failure in a row, twice as long per
further failure, never longer than the maximum; the right password is refused while
locked; an admin can unlock; every login leaves an audit event (docs/security.md).

The lock's times are judged by calling the login with the moment it happens at
(``now``), never by waiting."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from licentia.domain.actors import Actor, ActorKind, operator
from licentia.domain.errors import (
    AuthenticationError,
    LoginLockedError,
    NotFoundError,
    PermissionDeniedError,
)
from licentia.domain.scopes import ROLE_SCOPES, Role
from licentia.server.db.engine import Database, run_write
from licentia.server.logins import locks
from licentia.server.logins.bounded import log_in_staff_outside_transactions
from licentia.server.logins.services import (
    STAFF,
    AccountState,
    ThrottlePolicy,
    login_keys,
    record_failure,
)
from licentia.server.tenancy import services as tenancy
from licentia.server.tenancy.passwords import PasswordChecks
from tests.factories import PASSWORD, VendorFactory, VendorHandle
from tests.integration.test_audit import all_events

POLICY = ThrottlePolicy()  # 5 free failures, then 1, 2, 4 … minutes, at most 60
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
WRONG = "wrong password!"
_ADDRESSES = itertools.count(1)  # each failure from an address of its own: no address limit


def _user(vendor: VendorHandle) -> tuple[str, str]:
    email = f"{vendor.unique('staff')}@example.test"
    with vendor.database.transaction() as session:
        user = tenancy.create_user(
            session, operator(vendor.id), vendor.id, email=email, password=PASSWORD, role="admin"
        )
        return user.id, email


def _log_in(
    database: Database,
    vendor: VendorHandle,
    email: str,
    password: str,
    now: datetime,
    address: str = "192.0.2.1",
) -> Any:
    return log_in_staff_outside_transactions(
        database,
        PasswordChecks(2),
        vendor_slug=vendor.slug,
        email=email,
        password=password,
        source_ip=address,
        ttl=timedelta(hours=1),
        policy=POLICY,
        now=now,
    )


def _fail(database: Database, vendor: VendorHandle, email: str, now: datetime) -> None:
    with pytest.raises(AuthenticationError) as refused:
        _log_in(database, vendor, email, WRONG, now, address=f"2001:db8::{next(_ADDRESSES):x}")
    assert refused.value.code == "UNAUTHENTICATED"


def _locked(database: Database, vendor: VendorHandle, email: str, now: datetime) -> datetime:
    """The end of the lock a login with the right password meets at ``now``."""
    with pytest.raises(LoginLockedError) as refused:
        _log_in(database, vendor, email, PASSWORD, now)
    until = datetime.fromisoformat(refused.value.details["locked_until"])
    assert refused.value.retry_after_seconds == int((until - now).total_seconds()) + 1
    return until


def _state(vendor: VendorHandle, email: str, now: datetime) -> AccountState | None:
    with vendor.database.read() as session:
        states = locks.lock_states(session, STAFF, vendor.id, [email], POLICY, now)
    return states.get(email)


def test_the_lock_doubles_with_each_failure_and_ends_by_itself(
    vendors: VendorFactory, database: Database
) -> None:
    vendor = vendors.create()
    _, email = _user(vendor)
    for n in range(5):
        _fail(database, vendor, email, T0 + timedelta(seconds=n))
    last = T0 + timedelta(seconds=4)
    assert _locked(database, vendor, email, last + timedelta(seconds=30)) == last + timedelta(
        minutes=1
    )
    # Over: one more wrong guess locks for twice as long.
    sixth = last + timedelta(minutes=1, seconds=1)
    _fail(database, vendor, email, sixth)
    assert _locked(database, vendor, email, sixth + timedelta(minutes=1)) == sixth + timedelta(
        minutes=2
    )
    assert _state(vendor, email, sixth) == AccountState(6, sixth + timedelta(minutes=2))
    # The lock ends by itself; the right password then logs in and clears the count.
    done = _log_in(database, vendor, email, PASSWORD, sixth + timedelta(minutes=2, seconds=1))
    assert done.token and _state(vendor, email, sixth + timedelta(minutes=3)) is None


def test_the_lock_never_grows_beyond_the_maximum(
    vendors: VendorFactory, database: Database
) -> None:
    vendor = vendors.create()
    _, email = _user(vendor)
    now, longest = T0, timedelta()
    for _ in range(14):  # 5 free, then 1, 2, 4 … 256 minutes uncapped
        _fail(database, vendor, email, now)
        state = _state(vendor, email, now)
        assert state is not None
        if state.locked_until is not None:
            longest = max(longest, state.locked_until - now)
            now = state.locked_until
        now += timedelta(seconds=1)
    assert longest == POLICY.longest_lock == timedelta(hours=1)


def test_failures_are_forgotten_after_a_quiet_day(
    vendors: VendorFactory, database: Database
) -> None:
    vendor = vendors.create()
    _, email = _user(vendor)
    for n in range(4):
        _fail(database, vendor, email, T0 + timedelta(seconds=n))
    later = T0 + POLICY.forget_after + timedelta(seconds=4)
    _fail(database, vendor, email, later)  # the first of a new count, not the fifth
    assert _state(vendor, email, later) == AccountState(1, None)


def test_a_lock_reveals_no_account_an_unknown_e_mail_is_locked_alike(
    vendors: VendorFactory, database: Database
) -> None:
    vendor = vendors.create()
    for n in range(5):
        _fail(database, vendor, "nobody@example.test", T0 + timedelta(seconds=n))
    _locked(database, vendor, "nobody@example.test", T0 + timedelta(seconds=10))


def test_concurrent_failures_are_each_counted(vendors: VendorFactory, database: Database) -> None:
    vendor = vendors.create()
    _, email = _user(vendor)
    keys = login_keys(STAFF, vendor.slug, email, "203.0.113.9")

    def fail(n: int) -> AccountState:
        moment = T0 + timedelta(milliseconds=n)
        return run_write(database, lambda session: record_failure(session, keys, POLICY, moment))

    with ThreadPoolExecutor(max_workers=6) as pool:
        counts = sorted(state.failures for state in pool.map(fail, range(12)))
    # Each failure saw the one before it: no two were given the same count.
    assert counts == list(range(1, 13))


# --- who sees and lifts a lock -------------------------------------------------------------


def _staff_actor(vendor: VendorHandle, role: Role) -> Actor:
    return Actor(ActorKind.USER, "someone", vendor.id, ROLE_SCOPES[role])


def test_an_admin_unlocks_a_colleague_who_then_logs_in_with_the_right_password(
    vendors: VendorFactory, database: Database
) -> None:
    vendor, other = vendors.create(), vendors.create()
    user_id, email = _user(vendor)
    now = datetime.now(UTC)
    for n in range(5):
        _fail(database, vendor, email, now + timedelta(milliseconds=n))
    _locked(database, vendor, email, now + timedelta(seconds=1))
    with pytest.raises(PermissionDeniedError), database.transaction() as session:
        locks.unlock_staff_user(session, _staff_actor(vendor, Role.READ_ONLY), user_id)
    with pytest.raises(NotFoundError), database.transaction() as session:
        locks.unlock_staff_user(session, _staff_actor(other, Role.ADMIN), user_id)
    with database.transaction() as session:
        locks.unlock_staff_user(session, _staff_actor(vendor, Role.ADMIN), user_id)
    assert _log_in(database, vendor, email, PASSWORD, now + timedelta(seconds=2)).token
    [unlocked] = all_events(vendor, action="login.unlocked")
    assert (unlocked["object_id"], unlocked["after"]) == (user_id, {"email": email})


# --- the audit log -------------------------------------------------------------------------


def _login_api(vendor: VendorHandle, app: FastAPI, email: str, password: str) -> Any:
    return vendor.client.post(
        "/api/v1/sessions", json={"vendor": vendor.slug, "email": email, "password": password}
    )


def test_failed_and_successful_logins_are_audited_with_their_address(
    vendors: VendorFactory, app: FastAPI
) -> None:
    vendor = vendors.create()
    user_id, email = _user(vendor)
    assert _login_api(vendor, app, email, WRONG).status_code == 401
    assert _login_api(vendor, app, "nobody@example.test", WRONG).status_code == 401
    assert _login_api(vendor, app, email, PASSWORD).status_code == 201
    failed = all_events(vendor, action="login.failed")
    assert [(e["object_id"], e["after"]["email"]) for e in failed] == [
        (user_id, email),
        (None, "nobody@example.test"),
    ]
    assert failed[0]["after"] == {
        "email": email,
        "failures": 1,
        "locked_until": None,
        "reason": "password",
    }
    assert failed[0]["actor_type"] == "user" and failed[0]["source_ip"] == "testclient"
    [succeeded] = all_events(vendor, action="login.succeeded")
    assert (succeeded["actor_id"], succeeded["object_id"]) == (user_id, user_id)


def test_the_failure_that_locks_says_until_when_and_refusals_are_not_audited(
    vendors: VendorFactory, app: FastAPI
) -> None:
    vendor = vendors.create()
    _, email = _user(vendor)
    for _ in range(5):
        assert _login_api(vendor, app, email, WRONG).status_code == 401
    refused = _login_api(vendor, app, email, PASSWORD)
    assert refused.status_code == 429 and refused.json()["code"] == "LOGIN_LOCKED"
    failed = all_events(vendor, action="login.failed")
    assert [e["after"]["failures"] for e in failed] == [1, 2, 3, 4, 5]
    assert failed[-1]["after"]["locked_until"] == refused.json()["locked_until"]
    assert all_events(vendor, action="login.succeeded") == []
