"""The pieces that PostgreSQL hashes audit events from (server/audit/_postgres.py).

PostgreSQL fills ``at``, ``prev_hash`` and ``seq`` into the pieces and hashes the
result; ``licentia audit verify`` checks the same events with ``event_hash``. The two
must hash the very same bytes, whatever the events hold.
"""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from licentia.domain.audit import GENESIS, event_hash
from licentia.server.audit import _postgres
from licentia.server.audit._postgres import canonical_pieces
from tests.unit.test_audit_chain import CHAIN, DOCUMENTED_EVENT, DOCUMENTED_HASH, contents


def hashed_as_postgres_does(event: dict, prev_hash: str) -> str:
    """What the append statement computes: the pieces with the three values between."""
    first, second, third, last = canonical_pieces(event)
    text = first + event["at"] + second + prev_hash + third + str(event["seq"]) + last
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_documented_example_hashes_to_the_documented_value():
    assert hashed_as_postgres_does(DOCUMENTED_EVENT, GENESIS) == DOCUMENTED_HASH


def test_the_pieces_are_plain_ascii_so_the_database_encoding_cannot_change_them():
    event = {**DOCUMENTED_EVENT, "after": {"note": 'réglé ✓ 😀 "quoted" \\ \u2028'}}
    assert all(piece.isascii() for piece in canonical_pieces(event))
    assert hashed_as_postgres_does(event, GENESIS) == event_hash(event, GENESIS)


@given(contents, st.integers(1, 10**12), st.text("0123456789abcdef", min_size=64, max_size=64))
def test_the_pieces_hash_like_event_hash_whatever_the_event_holds(body, seq, prev_hash):
    event = {**body, "chain": CHAIN, "seq": seq}
    assert hashed_as_postgres_does(event, prev_hash) == event_hash(event, prev_hash)


def test_an_event_that_holds_the_cutting_marker_is_still_cut_right():
    # The pieces are cut at a random marker put in the holes; an event holding that
    # very text (it cannot guess it, but may hold it) is encoded field by field.
    for hole in ("at", "prev_hash", "seq"):
        event = {**DOCUMENTED_EVENT, "after": {"note": f"{_postgres._MARKER}{hole}"}}
        assert hashed_as_postgres_does(event, GENESIS) == event_hash(event, GENESIS)
