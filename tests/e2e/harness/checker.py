"""Verify a race's history against what License Central recorded.

Seats, seen from the clients: a client *believes* it holds lease L from the moment an
answer granting or renewing L arrived until the earliest of the expiry that answer
named and the moment the client started releasing L. Each belief is justified only if
the server really held L for the client then, so if at any moment more leases are
believed held than the pool has seats, the server oversold. Beliefs are deliberately
short (they start at the answer, not the request, and end at the release's
invocation), so a correct server can never fail this check.

Seats, seen from the server: its seat events (checkout, release, expire, deny) give
each lease a start; its end is the first release or expiry event, but no later than
the latest expiry any answer named for it (a lease nobody renews lapses then). At each
checkout the leases live by this account must not exceed the seats, and every denial
must have seen the pool full. Every refusal a client was answered is a denial event
(and a checkout whose answer was lost may be one more).

Counters: every acknowledged consumption is in the ledger exactly once, with the
units and balance that were acknowledged; nothing is in the ledger that no client
sent; the ledger's balances form one unbroken chain from the initial units (no two
consumptions saw the same balance); and the final balance equals the initial units
minus the acknowledged consumptions (plus those whose answer was lost, if the ledger
shows the server took them), which is also the ledger's recomputation.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tests.e2e.harness.history import Operation


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        figures = ", ".join(f"{k}={v}" for k, v in self.figures.items())
        return f"{figures}\n" + "\n".join(self.problems[:20])


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def max_overlap(intervals: Iterable[tuple[float, float, str]]) -> tuple[int, float, list[str]]:
    """The largest number of half-open intervals ``[start, end)`` alive at one moment,
    that moment, and the labels alive then."""
    points: list[tuple[float, int, str]] = []
    for start, end, label in intervals:
        if end > start:
            points += [(start, 1, label), (end, -1, label)]
    points.sort(key=lambda p: (p[0], p[1]))  # an end before a start at the same time
    alive: set[str] = set()
    best, when, labels = 0, 0.0, []
    for moment, step, label in points:
        if step > 0:
            alive.add(label)
        else:
            alive.discard(label)
        if len(alive) > best:
            best, when, labels = len(alive), moment, sorted(alive)
    return best, when, labels


# -- seats, from the clients ---------------------------------------------------------


def believed_holds(operations: list[Operation]) -> list[tuple[float, float, str]]:
    """Per lease, the merged periods its client believed it held it."""
    release_at: dict[str, float] = {}
    for op in operations:
        if op.kind == "release" and op.lease_id:
            release_at[op.lease_id] = min(release_at.get(op.lease_id, math.inf), op.invoked)
    segments: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for op in operations:
        if op.kind in ("checkout", "heartbeat") and op.ok:
            lease = str(op.answer["lease_id"])
            end = min(_stamp(op.answer["expires_at"]), release_at.get(lease, math.inf))
            segments[lease].append((op.completed, end))
    return [(s, e, lease) for lease, spans in segments.items() for s, e in _merged(spans)]


def _merged(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def check_client_view(operations: list[Operation], seats: int, report: Report) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for op in operations:
        if op.kind == "checkout" and op.ok:
            owners[str(op.answer["lease_id"])].add(op.client)
    for lease, clients in owners.items():
        if len(clients) > 1:
            report.problems.append(f"lease {lease} was granted to {sorted(clients)}")
    most, when, leases = max_overlap(believed_holds(operations))
    report.figures["max_believed_held"] = most
    if most > seats:
        report.problems.append(
            f"{most} leases believed held at {when:.3f} with {seats} seats: {leases}"
        )


# -- seats, from the server ----------------------------------------------------------


def check_server_view(
    operations: list[Operation],
    events: list[dict[str, Any]],
    seats: int,
    ttl: float,
    report: Report,
) -> None:
    starts: dict[str, float] = {}
    for event in events:
        if event["kind"] in ("checkout", "borrow"):
            lease = event["lease_id"]
            if lease in starts:
                report.problems.append(f"lease {lease} was checked out twice")
            starts[lease] = _stamp(event["at"])
    ended: dict[str, float] = {}
    for event in events:
        if event["kind"] in ("release", "force_release", "expire") and event["lease_id"]:
            lease = event["lease_id"]
            ended[lease] = min(ended.get(lease, math.inf), _stamp(event["at"]))
    expiry = _latest_expiries(operations, ttl)
    intervals = [
        (start, min(ended.get(lease, math.inf), max(start + ttl, expiry.get(lease, 0.0))), lease)
        for lease, start in starts.items()
    ]
    most, when, leases = max_overlap(intervals)
    report.figures["max_server_held"] = most
    if most > seats:
        report.problems.append(f"server events show {most} leases at {when:.3f}: {leases}")
    for event in events:
        if event["kind"] == "deny" and event["in_use"] < seats:
            report.problems.append(f"a denial at {event['at']} saw only {event['in_use']} in use")
    acknowledged = {
        str(op.answer["lease_id"]) for op in operations if op.kind == "checkout" and op.ok
    }
    missing = acknowledged - set(starts)
    if missing:
        report.problems.append(f"{len(missing)} granted leases have no checkout event")
    report.figures["server_checkouts"] = len(starts)
    report.figures["server_denials"] = sum(1 for e in events if e["kind"] == "deny")


def _latest_expiries(operations: list[Operation], ttl: float) -> dict[str, float]:
    """The latest expiry each lease may have reached, from the answers (and, for a
    renewal whose answer never came, the latest it could have set)."""
    latest: dict[str, float] = {}
    for op in operations:
        if op.kind in ("checkout", "heartbeat") and op.ok:
            lease, value = str(op.answer["lease_id"]), _stamp(op.answer["expires_at"])
        elif op.kind == "heartbeat" and op.status is None and op.lease_id:
            lease, value = op.lease_id, op.completed + ttl
        else:
            continue
        latest[lease] = max(latest.get(lease, 0.0), value)
    return latest


# -- counters ------------------------------------------------------------------------


def check_counter(
    operations: list[Operation], units: dict[str, Any], initial: int, report: Report
) -> None:
    consumes = [op for op in operations if op.kind == "consume"]
    acked = _acknowledged(consumes, report)
    sent = {str(op.request["key"]): int(op.request["units"]) for op in consumes}
    ledger = [entry for entry in units["ledger"] if entry["kind"] == "consume"]
    counted = Counter(entry["key"] for entry in ledger)
    taken = {entry["key"]: entry for entry in ledger}
    for key, times in counted.items():
        if times != 1:
            report.problems.append(f"key {key} is in the ledger {times} times")
        if key not in sent:
            report.problems.append(f"the ledger holds a consumption nobody sent: {key}")
    for key, (units_acked, balance_after) in acked.items():
        entry = taken.get(key)
        if entry is None:
            report.problems.append(f"acknowledged consumption {key} is not in the ledger")
        elif (-entry["delta"], entry["balance_after"]) != (units_acked, balance_after):
            report.problems.append(f"consumption {key} was acknowledged as something else")
    _check_chain(ledger, initial, report)
    unacknowledged = sum(-e["delta"] for e in ledger if e["key"] not in acked)
    expected = initial - sum(u for u, _ in acked.values()) - unacknowledged
    if not units["balance"] == units["recomputed_from_ledger"] == expected:
        report.problems.append(
            f"balance {units['balance']}, ledger {units['recomputed_from_ledger']}, "
            f"expected {expected}"
        )
    for op in consumes:
        if op.code == "UNITS_EXHAUSTED" and op.answer.get("balance", 0) >= op.request["units"]:
            report.problems.append(f"refused {op.request['units']} units with {op.answer}")
    report.figures.update(
        consumptions_acknowledged=len(acked),
        taken_without_answer=sum(1 for e in ledger if e["key"] not in acked),
        replays=sum(1 for op in consumes if op.ok and op.answer.get("replayed")),
        exhausted=sum(1 for op in consumes if op.code == "UNITS_EXHAUSTED"),
        final_balance=units["balance"],
    )


def _acknowledged(consumes: list[Operation], report: Report) -> dict[str, tuple[int, int]]:
    acked: dict[str, tuple[int, int]] = {}
    for op in consumes:
        if not op.ok:
            continue
        key, value = (
            str(op.answer["key"]),
            (int(op.answer["units"]), int(op.answer["balance_after"])),
        )
        if acked.setdefault(key, value) != value:
            report.problems.append(f"key {key} was acknowledged twice, differently")
    return acked


def _check_chain(ledger: list[dict[str, Any]], initial: int, report: Report) -> None:
    balance = initial
    for entry in sorted(ledger, key=lambda e: -e["balance_after"]):
        balance += entry["delta"]
        if entry["balance_after"] != balance:
            report.problems.append(
                f"the ledger's balances break at {entry['key']}: {entry['balance_after']} "
                f"after taking {-entry['delta']}, expected {balance}"
            )
            return
    if balance < 0:
        report.problems.append(f"the balance went below zero: {balance}")


def check(
    operations: list[Operation],
    *,
    seats: int,
    ttl: float,
    events: list[dict[str, Any]],
    units: dict[str, Any],
    initial: int,
) -> Report:
    """Every check above; an empty ``problems`` list means the history is correct."""
    report = Report()
    check_client_view(operations, seats, report)
    check_server_view(operations, events, seats, ttl, report)
    check_counter(operations, units, initial, report)
    kinds = Counter(op.kind for op in operations)
    report.figures.update(
        operations=len(operations),
        clients=len({op.client for op in operations}),
        nodes=len({op.node for op in operations}),
        checkouts_granted=sum(1 for op in operations if op.kind == "checkout" and op.ok),
        checkouts_refused=sum(1 for op in operations if op.code == "NO_SEAT_AVAILABLE"),
        heartbeats=kinds["heartbeat"],
        releases=kinds["release"],
        answers_lost=sum(1 for op in operations if op.status is None),
    )
    _check_denials_recorded(operations, report)
    return report


def _check_denials_recorded(operations: list[Operation], report: Report) -> None:
    refused = report.figures["checkouts_refused"]
    unanswered = sum(1 for op in operations if op.kind == "checkout" and op.status is None)
    recorded = report.figures["server_denials"]
    if not refused <= recorded <= refused + unanswered:
        report.problems.append(
            f"{refused} refusals answered ({unanswered} checkouts unanswered), "
            f"{recorded} denials recorded"
        )
