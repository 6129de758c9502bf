"""The audit chain's hashing rule (licentia.domain.audit), as docs/formats.md states it.

A chain of events is built here the way the server appends them; every kind of
tampering must then be reported by ``find_break`` at the right ``seq``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licentia.domain.audit import GENESIS, HASHED_FIELDS, event_hash, find_break

CHAIN = "01a21ff6-7756-795d-9d28-207aaa4ee600"

# The example printed in docs/formats.md, section 4: the document and the code agree.
DOCUMENTED_EVENT = {
    "chain": CHAIN,
    "seq": 1,
    "at": "2026-11-28T02:21:09.014835+00:00",
    "actor_type": "api_key",
    "actor_id": "01a21ff6-7756-795d-9d28-207aaa4ee601",
    "action": "license.suspended",
    "object_type": "license",
    "object_id": "01a21ff6-7756-795d-9d28-207aaa4ee678",
    "before": {"state": "available", "version": 1},
    "after": {"state": "suspended", "version": 2},
    "source_ip": "203.0.113.7",
}
DOCUMENTED_HASH = "e47f2b03d0751ead1980e6c8fd774e7f5de5a5f625afd049d78b686cebd40e9c"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
contents = st.fixed_dictionaries(
    {
        "at": st.datetimes().map(lambda t: t.isoformat(timespec="microseconds") + "+00:00"),
        "actor_type": st.sampled_from(["user", "api_key", "operator", "system"]),
        "actor_id": st.none() | st.text(max_size=12),
        "action": st.text(min_size=1, max_size=20),
        "object_type": st.text(min_size=1, max_size=10),
        "object_id": st.none() | st.text(max_size=12),
        "before": st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        "after": st.none() | st.dictionaries(st.text(max_size=6), json_values, max_size=3),
        "source_ip": st.none() | st.ip_addresses().map(str),
    }
)


def build_chain(bodies: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """Events as the server appends them, and the chain's head."""
    events, prev = [], GENESIS
    for seq, body in enumerate(bodies, start=1):
        event = {**body, "chain": CHAIN, "seq": seq, "prev_hash": prev}
        event["hash"] = event_hash(event, prev)
        events.append(event)
        prev = event["hash"]
    return events, (len(events), prev)


# The strategy draws the events' contents only; each test builds (hashes) the chain
# itself. Hashing inside the strategy counted as data generation, which Hypothesis
# judges too slow on a busy machine.
chains = st.lists(contents, min_size=3, max_size=8)
few = settings(max_examples=40)


def test_the_documented_example_hashes_to_the_documented_value():
    assert event_hash(DOCUMENTED_EVENT, GENESIS) == DOCUMENTED_HASH


def test_the_hash_is_sha256_of_the_canonical_json_described_in_the_docs():
    event = {**DOCUMENTED_EVENT, "after": {"state": "suspendu", "note": "réglé ✓ 😀"}}
    content = {name: event[name] for name in HASHED_FIELDS} | {"prev_hash": GENESIS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert "\\u00e9" in canonical and "\\ud83d\\ude00" in canonical
    assert event_hash(event, GENESIS) == hashlib.sha256(canonical.encode()).hexdigest()


def test_the_order_of_keys_inside_before_and_after_does_not_matter():
    reordered = {**DOCUMENTED_EVENT, "before": {"version": 1, "state": "available"}}
    assert event_hash(reordered, GENESIS) == DOCUMENTED_HASH


@given(contents, st.sampled_from(HASHED_FIELDS), st.text(min_size=1, max_size=5))
def test_changing_any_hashed_field_changes_the_hash(body, field, junk):
    event = {**body, "chain": CHAIN, "seq": 4}
    changed = {**event, field: f"{event[field]!r}{junk}"}
    assert event_hash(changed, GENESIS) != event_hash(event, GENESIS)


def test_the_predecessor_is_part_of_the_hash():
    assert event_hash(DOCUMENTED_EVENT, "1" * 64) != DOCUMENTED_HASH


# --- find_break -------------------------------------------------------------------------


@few
@given(chains)
def test_an_untouched_chain_has_no_break(bodies):
    events, head = build_chain(bodies)
    assert find_break(CHAIN, events, head) is None


@few
@given(chains, st.data())
def test_an_edited_event_is_reported_at_its_seq(bodies, data):
    events, head = build_chain(bodies)
    index = data.draw(st.integers(0, len(events) - 1))
    field = data.draw(st.sampled_from([*HASHED_FIELDS, "hash"]))
    events[index] = {**events[index], field: f"{events[index][field]!r}-forged"}
    found = find_break(CHAIN, events, head)
    assert found is not None
    assert found.seq == index + 1


@few
@given(chains, st.data())
def test_a_deleted_event_in_the_middle_is_reported_as_missing(bodies, data):
    events, head = build_chain(bodies)
    index = data.draw(st.integers(0, len(events) - 2))
    del events[index]
    found = find_break(CHAIN, events, head)
    assert found is not None
    assert (found.seq, found.reason) == (index + 1, f"event {index + 1} is missing")


@few
@given(chains, st.data())
def test_a_cut_tail_is_reported_where_it_was_cut(bodies, data):
    events, head = build_chain(bodies)
    keep = data.draw(st.integers(0, len(events) - 1))
    found = find_break(CHAIN, events[:keep], head)
    assert found is not None
    assert found.seq == keep + 1
    assert "removed" in found.reason


def test_without_the_head_a_cut_tail_cannot_be_seen():
    # Why the server keeps each chain's head apart from the events.
    events, _ = build_chain([DOCUMENTED_EVENT] * 4)
    assert find_break(CHAIN, events[:2], None) is None


@few
@given(chains)
def test_a_whole_chain_recomputed_after_an_edit_still_disagrees_with_the_head(bodies):
    events, head = build_chain(bodies)
    forged = [{**event} for event in events]
    forged[0]["action"] = "forged"
    rebuilt, _ = build_chain([{k: e[k] for k in HASHED_FIELDS} for e in forged])
    found = find_break(CHAIN, rebuilt, head)
    assert found is not None
    assert found.seq == len(events) + 1


@pytest.mark.parametrize("first_prev", ["", "0" * 63, "f" * 64])
def test_the_first_event_must_link_to_the_genesis_value(first_prev):
    events, head = build_chain([DOCUMENTED_EVENT, DOCUMENTED_EVENT])
    events[0] = {**events[0], "prev_hash": first_prev}
    found = find_break(CHAIN, events, head)
    assert found is not None
    assert found.seq == 1
