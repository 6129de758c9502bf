"""The audit chain's hashing rule: each event hashes its content and its predecessor.

An edited event no longer matches its hash; a deleted one leaves a gap in ``seq``
and a ``prev_hash`` that points nowhere; a truncated tail no longer matches the
chain's head. ``find_break`` reports the first of these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
    "chain",
    "seq",
    "at",
    "actor_type",
    "actor_id",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "source_ip",
)


def event_hash(fields: Mapping[str, Any], prev_hash: str) -> str:
    """SHA-256 over the canonical JSON of the hashed fields plus ``prev_hash``."""
    content = {name: fields[name] for name in HASHED_FIELDS}
    content["prev_hash"] = prev_hash
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    chain: str
    seq: int
    reason: str


def find_break(
    chain: str, events: Iterable[Mapping[str, Any]], head: tuple[int, str] | None
) -> ChainBreak | None:
    """The first broken link of ``chain`` (events in ``seq`` order), or None if intact."""
    prev_hash, expected_seq = GENESIS, 1
    for event in events:
        seq = event["seq"]
        if seq != expected_seq:
            return ChainBreak(chain, expected_seq, f"event {expected_seq} is missing")
        if event["prev_hash"] != prev_hash:
            return ChainBreak(chain, seq, "does not link to the event before it")
        if event_hash(event, prev_hash) != event["hash"]:
            return ChainBreak(chain, seq, "its content was changed after it was written")
        prev_hash, expected_seq = event["hash"], seq + 1
    if head is not None and head != (expected_seq - 1, prev_hash):
        return ChainBreak(chain, expected_seq, "events after this point were removed")
    return None
