"""Credentials this process verified a moment ago.

Reading the API key or session row on every request cost a database round trip and
most of a cheap read's time. A verified credential is therefore trusted again for a
few seconds (``LICENTIA_CREDENTIAL_CACHE_SECONDS``, default 2; 0 turns it off) before
it is read again. A revocation through this process clears the cache at once; one made
elsewhere (another worker process or node, the ``licentia admin`` CLI) takes effect
within that time. A session's own expiry is never extended by the cache.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import datetime

from licentia.domain.actors import Actor
from licentia.server.db.base import utcnow

_MAX_ENTRIES = 10_000  # a flood of distinct keys only costs a reset, never memory


@dataclass(frozen=True)
class _Entry:
    actor: Actor
    until: float  # time.monotonic()


class CredentialCache:
    """Maps a bearer token (by its hash) to the Actor it was verified as."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._entries: dict[bytes, _Entry] = {}

    def get(self, token: str, source_ip: str | None) -> Actor | None:
        """The cached Actor for ``token``, or None if unknown or due for a re-read."""
        if self._seconds <= 0:
            return None
        entry = self._entries.get(_digest(token))
        if entry is None or entry.until <= time.monotonic():
            return None
        return replace(entry.actor, source_ip=source_ip)

    def put(self, token: str, actor: Actor, *, expires_at: datetime | None = None) -> None:
        """Remember ``actor``; never beyond ``expires_at`` (a session's own end)."""
        if self._seconds <= 0:
            return
        seconds = self._seconds
        if expires_at is not None:
            seconds = min(seconds, (expires_at - utcnow()).total_seconds())
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[_digest(token)] = _Entry(actor, time.monotonic() + seconds)

    def clear(self) -> None:
        """Forget everything: a credential was revoked."""
        self._entries.clear()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
