"""The race checker itself: it must reject the histories an oversold pool or a double
count would leave behind, and accept a correct one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.e2e.harness.checker import check
from tests.e2e.harness.history import Operation

T0 = 1_700_000_000.0


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).isoformat()


def _hold(client: str, lease: str, start: float, release: float) -> list[Operation]:
    """A checkout answered at ``start`` (lease for 10 s) and released at ``release``."""
    granted = Operation(client, "checkout", "n1", T0 + start - 0.1, T0 + start, 201)
    granted.answer = {"lease_id": lease, "expires_at": _iso(start + 10)}
    released = Operation(client, "release", "n1", T0 + release, T0 + release + 0.1, 204)
    released.lease_id = lease
    return [granted, released]


def _event(kind: str, lease: str | None, at: float, in_use: int = 0) -> dict[str, Any]:
    return {"kind": kind, "lease_id": lease, "at": _iso(at), "in_use": in_use}


def _consume(key: str, units: int, balance_after: int, status: int = 200) -> Operation:
    operation = Operation("c", "consume", "n1", T0, T0 + 0.1, status)
    operation.request = {"key": key, "units": units}
    operation.answer = {"key": key, "units": units, "balance_after": balance_after}
    return operation


def _ledger(*entries: tuple[str, int, int]) -> dict[str, Any]:
    rows = [{"kind": "consume", "key": k, "delta": -u, "balance_after": b} for k, u, b in entries]
    balance = rows[-1]["balance_after"] if rows else 10
    return {"balance": balance, "recomputed_from_ledger": balance, "ledger": rows}


NO_EVENTS: list[dict[str, Any]] = []


def test_a_correct_history_passes() -> None:
    operations = _hold("a", "L1", 0, 2) + _hold("b", "L2", 3, 4)
    operations += [_consume("k1", 3, 7), _consume("k2", 2, 5)]
    events = [_event("checkout", "L1", 0), _event("release", "L1", 2)]
    events += [_event("checkout", "L2", 3), _event("release", "L2", 4)]

    report = check(
        operations,
        seats=1,
        ttl=10,
        events=events,
        units=_ledger(("k1", 3, 7), ("k2", 2, 5)),
        initial=10,
    )

    assert report.problems == []


def test_two_clients_holding_the_one_seat_at_once_are_caught() -> None:
    operations = _hold("a", "L1", 0, 5) + _hold("b", "L2", 3, 6)

    report = check(operations, seats=1, ttl=10, events=NO_EVENTS, units=_ledger(), initial=10)

    assert any("2 leases believed held" in problem for problem in report.problems)


def test_server_events_showing_more_leases_than_seats_are_caught() -> None:
    events = [_event("checkout", "L1", 0), _event("checkout", "L2", 1)]
    events += [_event("deny", None, 2, in_use=0)]

    report = check([], seats=1, ttl=10, events=events, units=_ledger(), initial=10)

    assert any("server events show 2 leases" in problem for problem in report.problems)
    assert any("saw only 0 in use" in problem for problem in report.problems)


def test_a_consumption_counted_twice_is_caught() -> None:
    operations = [_consume("k1", 3, 7), _consume("k2", 2, 5)]
    double = _ledger(("k1", 3, 7), ("k2", 2, 7))  # two consumptions saw the same balance

    report = check(operations, seats=1, ttl=10, events=NO_EVENTS, units=double, initial=10)

    assert any("balances break" in problem for problem in report.problems)


def test_an_acknowledged_consumption_missing_from_the_ledger_is_caught() -> None:
    operations = [_consume("k1", 3, 7)]

    report = check(operations, seats=1, ttl=10, events=NO_EVENTS, units=_ledger(), initial=10)

    assert any("not in the ledger" in problem for problem in report.problems)
    assert any("expected 7" in problem for problem in report.problems)
