"""A line for each family of routes a guesser aims at: at most so many of its requests
are served at once by a process, and one more is refused at once.

The rate limits count per address and per credential, so a flood from many addresses
stays under every address's limits at first: 100 addresses may each send 10 logins
and 10 ticket codes before any is refused. Each of these allowed requests did real
work (a password check; a write transaction, which on SQLite waits for the one write
lock), and while it waited it held one of the threads of the request pool that every
other request needs as well: a legitimate client's read waited seconds for a thread
(docs/benchmarks.md, "A flood of guessers"). With a line, at most ``at_once`` requests
of each lined family are served at once; one more is answered ``503 FAMILY_BUSY``
with ``Retry-After: 1`` before its body is parsed, a credential checked or the
database touched. The rate limits have counted it first, so a flood's addresses
reach their limits (and the tarpit) after as many requests as without the line.

Counting happens on the event loop, with no ``await`` between the check and the
count, so two requests cannot both take the last place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from licentia.domain.errors import ServerBusyError
from licentia.server.rate_limits.families import Family
from licentia.server.settings import Settings

# The families a guesser aims at whose every request does work worth a line. Not
# ``activation``: a customer's rollout activates many devices at once, legitimately,
# and its rate limit bounds each address already; nor ``api`` and ``pages``.
LINED = frozenset({Family.LOGIN, Family.TICKET, Family.REGISTRATION, Family.PASSWORD_RESET})
BUSY = "FAMILY_BUSY"
LINE = "licentia.line"  # in a request's scope: the lined family it is served in


class Lines:
    """The requests of each lined family being served in this process now, and how
    many may be (``places``: ``at_once`` for a family not named)."""

    def __init__(self, at_once: int, places: Mapping[Family, int] | None = None) -> None:
        self.places = {family: at_once for family in LINED} | dict(places or {})
        self.serving: Counter[Family] = Counter()

    @classmethod
    def of(cls, settings: Settings) -> Lines | None:
        """``LICENTIA_GUESSES_AT_ONCE`` places per family, and for ``login`` no more
        than ``LICENTIA_PASSWORD_CHECKS``: a login beyond the checks would read the
        database only to be refused ``LOGINS_BUSY``. None for 0 (no line)."""
        at_once = settings.guesses_at_once
        if at_once <= 0:
            return None
        return cls(at_once, {Family.LOGIN: min(at_once, settings.password_checks)})

    def enter(self, family: Family) -> ServerBusyError | None:
        """Take a place in ``family``'s line (give it back with :meth:`leave`); the
        error to answer instead when every place is taken."""
        if self.serving[family] >= self.places[family]:
            return ServerBusyError(
                f"many requests of the family '{family.value}' are being answered at this "
                "moment; try again in a second",
                code=BUSY,
                family=family.value,
                retry_after_seconds=1,
            )
        self.serving[family] += 1
        return None

    def leave(self, family: Family) -> None:
        self.serving[family] -= 1
