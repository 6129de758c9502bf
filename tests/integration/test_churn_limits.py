"""A template's churn limit: at most ``count`` activations and returns of one device
license within its period, online and by file alike, refused beyond with
``CHURN_LIMIT_REACHED`` and enforced by the database under concurrency
(docs/security.md#churn-limits)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from licentia.client import ChurnLimitReachedError, TicketRejectedError
from licentia.domain.errors import ConflictError
from licentia.server.activation.churn import count_churn
from licentia.server.db.engine import Database, run_write
from licentia.server.licenses.models import License
from tests.integration.test_audit import all_events
from tests.integration.test_client_sdk import MACHINE_B, Lab, lab  # noqa: F401 - fixture

MACHINE_C = {name: f"c-{value}" for name, value in MACHINE_B.items()}


def test_a_return_beyond_the_limit_is_refused_and_the_license_stays(lab: Lab) -> None:  # noqa: F811
    code, _ = lab.ticket(churn_limit={"count": 3, "days": 30})
    first, second = lab.device("a"), lab.device("b", machine=MACHINE_B)
    (entitlement,) = first.activate(code)  # 1
    first.return_license(entitlement.license_id)  # 2
    second.activate(code)  # 3

    with pytest.raises(ChurnLimitReachedError) as caught:
        second.return_license(entitlement.license_id)

    assert (caught.value.code, caught.value.status) == ("CHURN_LIMIT_REACHED", 409)
    assert "churn limit (3 activations and returns in 30 days)" in str(caught.value)
    assert "cannot be activated or returned again until" in str(caught.value)
    assert second.require(entitlement.product).license_id == entitlement.license_id
    assert lab.license(entitlement.license_id)["state"] == "activated"


def test_an_activation_online_or_by_file_beyond_the_limit_is_refused(lab: Lab) -> None:  # noqa: F811
    code, _ = lab.ticket(churn_limit={"count": 2, "days": 7})
    first = lab.device("a")
    (entitlement,) = first.activate(code)
    first.return_license(entitlement.license_id)

    with pytest.raises(ChurnLimitReachedError) as online:
        lab.device("b", machine=MACHINE_B).activate(code)
    assert (online.value.server_code, online.value.status) == ("CHURN_LIMIT_REACHED", 409)

    offline = lab.device("c", machine=MACHINE_C, server=None)
    request = offline.create_offline_request(lab.root / "c.request", ticket=code)
    by_file = lab.post("offline", request)
    problem = by_file.json()
    assert by_file.status_code == 409 and problem["code"] == "CHURN_LIMIT_REACHED"
    assert (problem["count"], problem["days"]) == (2, 7)
    until = datetime.fromisoformat(problem["until"])
    assert timedelta(days=6) < until - datetime.now(UTC) <= timedelta(days=7)
    assert lab.license(entitlement.license_id)["state"] == "returned"


def test_an_activation_takes_another_license_when_one_is_churned_out(lab: Lab) -> None:  # noqa: F811
    code, _ = lab.ticket(quantity=2, churn_limit={"count": 2, "days": 30})
    first = lab.device("a")
    (churned,) = first.activate(code)
    first.return_license(churned.license_id)  # this license's period is full now

    (other,) = lab.device("b", machine=MACHINE_B).activate(code)
    assert other.license_id != churned.license_id


def test_each_counted_activation_and_return_is_audited_with_its_count(lab: Lab) -> None:  # noqa: F811
    code, _ = lab.ticket(churn_limit={"count": 5, "days": 30})
    device = lab.device("a")
    (entitlement,) = device.activate(code)
    device.return_license(entitlement.license_id)
    events = all_events(lab.vendor, object_id=entitlement.license_id)
    churns = {e["action"]: e["after"]["churn"] for e in events if "churn" in (e["after"] or {})}
    assert churns["license.activated"]["count"] == 1
    assert churns["license.returned"]["count"] == 2
    assert churns["license.returned"]["limit"] == 5
    assert churns["license.returned"]["period_ends"] == churns["license.activated"]["period_ends"]


def test_a_license_without_a_churn_limit_counts_nothing(lab: Lab) -> None:  # noqa: F811
    code, _ = lab.ticket()
    device = lab.device("a")
    (entitlement,) = device.activate(code)
    for _ in range(3):
        device.return_license(entitlement.license_id)
        device.activate(code)
    events = all_events(lab.vendor, object_id=entitlement.license_id)
    assert not any("churn" in (e["after"] or {}) for e in events)


# --- the database enforces it --------------------------------------------------------------


def _license_with_limit(shop: Lab, count: int, days: int) -> tuple[str, dict[str, Any]]:
    _, order = shop.ticket(churn_limit={"count": count, "days": days})
    (license_id,) = shop.vendor.ok("GET", f"/tickets/{order['ticket_id']}")["license_ids"]
    return license_id, shop.license(license_id)["options"]


def _count(database: Database, license_id: str, options: dict[str, Any], now: datetime) -> Any:
    return run_write(
        database, lambda session: count_churn(session.connection(), license_id, options, now)
    )


def test_concurrent_counts_on_one_license_never_pass_the_limit(
    lab: Lab,  # noqa: F811
    database: Database,
) -> None:
    license_id, options = _license_with_limit(lab, count=5, days=30)
    now = datetime.now(UTC)

    def attempt(_: int) -> str:
        try:
            _count(database, license_id, options, now)
        except ConflictError as refused:
            return refused.code
        return "counted"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(24)))
    assert outcomes.count("counted") == 5
    assert outcomes.count("CHURN_LIMIT_REACHED") == 19
    with database.read() as session:
        row = session.execute(
            select(License.churn_count, License.churn_full_until).where(License.id == license_id)
        ).one()
    assert row.churn_count == 5 and row.churn_full_until == now + timedelta(days=30)


def test_a_new_period_begins_after_the_last_one_ended(lab: Lab, database: Database) -> None:  # noqa: F811
    license_id, options = _license_with_limit(lab, count=2, days=10)
    start = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    _count(database, license_id, options, start)
    assert _count(database, license_id, options, start + timedelta(days=1)).count == 2
    with pytest.raises(ConflictError) as refused:
        _count(database, license_id, options, start + timedelta(days=9, hours=23))
    assert refused.value.details["until"] == (start + timedelta(days=10)).isoformat()
    fresh = _count(database, license_id, options, start + timedelta(days=10))
    assert (fresh.count, fresh.period_ends) == (1, start + timedelta(days=20))


def test_devices_racing_to_activate_and_return_one_license_churn_it_exactly_the_limit(
    lab: Lab,  # noqa: F811
) -> None:
    code, _ = lab.ticket(churn_limit={"count": 4, "days": 30})
    machines = [{name: f"{n}-{value}" for name, value in MACHINE_B.items()} for n in range(6)]
    clients = [lab.device(f"d{n}", machine=machine) for n, machine in enumerate(machines)]

    def churn(n: int) -> list[str]:
        done: list[str] = []
        client = clients[n]
        for _ in range(6):
            try:
                (entitlement,) = client.activate(code)
            except (TicketRejectedError, ChurnLimitReachedError) as refused:
                done.append(str(refused.server_code))
                continue
            done.append("activated")
            try:
                client.return_license(entitlement.license_id)
            except ChurnLimitReachedError:
                done.append("CHURN_LIMIT_REACHED")
                return done
            done.append("returned")
        return done

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = [item for items in pool.map(churn, range(6)) for item in items]
    counted = outcomes.count("activated") + outcomes.count("returned")
    assert counted == 4, outcomes
    assert set(outcomes) <= {"activated", "returned", "NO_LICENSE_AVAILABLE", "CHURN_LIMIT_REACHED"}
    events = all_events(lab.vendor, action="license.activated") + all_events(
        lab.vendor, action="license.returned"
    )
    assert sorted(e["after"]["churn"]["count"] for e in events) == [1, 2, 3, 4]
